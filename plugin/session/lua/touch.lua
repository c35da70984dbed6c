-- Moves a live session's last-seen stamp and expiry (the sliding idle timeout); sent at most once per touch
-- interval per session, next to the plain HGETALL that reads it. Never brings back a session that ended.
-- KEYS[1]  the session hash
-- ARGV[1]  idle timeout in ms
-- ARGV[2]  absolute lifetime in ms
-- Returns  1 touched, 0 no live session (missing, revoked, or past its absolute lifetime: then deleted)
local created = redis.call('HGET', KEYS[1], '@c')
if not created or redis.call('HEXISTS', KEYS[1], '@x') == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000.0)
local left = tonumber(created) + tonumber(ARGV[2]) - now
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], '@s', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.ceil(math.min(tonumber(ARGV[1]) + 0.0, left))))
return 1
