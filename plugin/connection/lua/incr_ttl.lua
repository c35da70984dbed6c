-- Adds to a counter and gives it a time to live when it has none, in one step: the building block for counters
-- that expire by themselves (the store conformance suite runs it on every Redis-protocol store).
-- KEYS[1]  the counter
-- ARGV[1]  increment (integer, may be negative)
-- ARGV[2]  time to live in milliseconds applied when the key has none (0: leave it without expiry)
-- Returns  { new value, remaining time to live in ms (-1: none) }
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
local remaining = redis.call('PTTL', KEYS[1])
if ttl > 0 and remaining < 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  remaining = ttl
end
return { value, remaining }
