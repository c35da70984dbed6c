-- Lists a channel's present members on the server's clock, removing those whose lease ran out.
-- KEYS[1] members (sorted set: member -> lease end in ms)
-- KEYS[2] metadata (hash: member -> JSON)
-- ARGV[1] most members to return (at most 5000: they are unpacked into one HMGET)
-- Returns {{expired members}, {members}, {their metadata JSON, false where none}}
local t = redis.call('TIME')
local now = math.floor(tonumber(t[1]) * 1000.0 + tonumber(t[2]) / 1000.0)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 500)
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
end
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #members == 0 then
  return {expired, {}, {}}
end
return {expired, members, redis.call('HMGET', KEYS[2], unpack(members))}
