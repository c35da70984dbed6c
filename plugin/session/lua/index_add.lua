-- Adds a session id to an index (a user's sessions, or every session of the express-session adapter), scored by
-- the latest moment the session can live, and drops ids whose moment has passed: the index stays bounded by the
-- sessions that can still exist, without a SCAN.
-- KEYS[1]  the index (sorted set: session id -> deadline in epoch ms)
-- ARGV[1]  session id
-- ARGV[2]  absolute lifetime in ms
-- Returns  the number of ids in the index
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000.0)
local absolute = tonumber(ARGV[2]) + 0.0
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
redis.call('ZADD', KEYS[1], string.format('%.0f', now + absolute), ARGV[1])
if redis.call('PTTL', KEYS[1]) < absolute then
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', absolute))
end
return redis.call('ZCARD', KEYS[1])
