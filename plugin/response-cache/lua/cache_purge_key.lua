-- Deletes every variant of one primary key, its Vary spec and its variant list (all in one Cluster slot).
-- KEYS[1]  the primary key's Vary spec
-- KEYS[2]  the index of the primary key's variant entry keys (sorted set)
-- KEYS[3]  where an earlier version kept that index as a plain set (instances of both versions during a rolling
--          deploy: each writes its own, a purge clears both)
-- Returns  how many variant entries were deleted
local deleted = 0
for _, key in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  deleted = deleted + redis.call('DEL', key)
end
for _, key in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  deleted = deleted + redis.call('DEL', key)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return deleted
