-- Removes a member from a channel's presence set.
-- KEYS[1] members (sorted set: member -> lease end in ms)
-- KEYS[2] metadata (hash: member -> JSON)
-- ARGV[1] member
-- Returns 1 when the member was there, 0 otherwise
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return removed
