-- Takes every variant of one primary key for deletion: deletes its Vary spec and variant indexes and returns the
-- entry keys they listed, which the caller then deletes (through the client, so that during a Cluster slot
-- migration each DEL is redirected like any command: a script may only touch the keys it declares).
-- KEYS[1]  the primary key's Vary spec
-- KEYS[2]  the index of the primary key's variant entry keys (sorted set)
-- KEYS[3]  where an earlier version kept that index as a plain set (read and deleted too)
-- Returns  the entry keys listed
local members = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, key in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  members[#members + 1] = key
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return members
