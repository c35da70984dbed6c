-- Joins a member to a channel's presence set or renews its lease, on the server's clock, after removing the
-- members whose lease ran out (they are returned so that the caller announces their leave once).
-- KEYS[1] members (sorted set: member -> lease end in ms on the server's clock)
-- KEYS[2] metadata (hash: member -> JSON)
-- ARGV[1] member
-- ARGV[2] metadata JSON ('' keeps what is stored)
-- ARGV[3] lease in ms
-- ARGV[4] most members a channel may hold
-- Returns {1 when the member is new, 0 when renewed, -1 when the channel is full; {expired members}}
local t = redis.call('TIME')
local now = math.floor(tonumber(t[1]) * 1000.0 + tonumber(t[2]) / 1000.0)
local lease = tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 500)
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
end
local isNew = 0
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  isNew = 1
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
    return {-1, expired}
  end
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], lease * 2)
redis.call('PEXPIRE', KEYS[2], lease * 2)
return {isNew, expired}
