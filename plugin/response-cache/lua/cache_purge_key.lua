-- Deletes every variant of one primary key, its Vary spec and its variant list (all in one Cluster slot).
-- KEYS[1]  the primary key's Vary spec
-- KEYS[2]  the set of the primary key's variant entry keys
-- Returns  how many variant entries were deleted
local members = redis.call('SMEMBERS', KEYS[2])
local deleted = 0
for _, key in ipairs(members) do
  deleted = deleted + redis.call('DEL', key)
end
redis.call('DEL', KEYS[1], KEYS[2])
return deleted
