-- Writes the fields a request changed, and only those, so parallel requests that change different fields both
-- keep their change. Also moves the last-seen stamp and the expiry (a write is activity).
-- KEYS[1]  the session hash
-- ARGV[1]  mode: 'c' create (refused when the key exists: ids are never reused, and a revoked id stays dead),
--          'u' update (refused when the session is gone: a destroyed or expired session is not brought back),
--          'r' replace every field (express-session's Store.set; creates when missing)
-- ARGV[2]  idle timeout in ms
-- ARGV[3]  absolute lifetime in ms
-- ARGV[4]  n, the number of fields to set
-- ARGV[5 .. 4+2n]  field, value pairs to set
-- ARGV[5+2n ..]    fields to delete
-- Returns  2 created, 1 written, 0 refused (session missing, revoked or expired; or, for 'c', already there)
local key = KEYS[1]
local mode = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000.0)
local idle = tonumber(ARGV[2]) + 0.0
local absolute = tonumber(ARGV[3]) + 0.0
local n = tonumber(ARGV[4])
local created = redis.call('HGET', key, '@c')
local result = 1
if redis.call('HEXISTS', key, '@x') == 1 then return 0 end
if mode == 'c' then
  if redis.call('EXISTS', key) == 1 then return 0 end
  created = now
  result = 2
elseif mode == 'u' then
  if not created then return 0 end
  created = tonumber(created)
  local seen = tonumber(redis.call('HGET', key, '@s') or '0')
  if now - seen >= idle or created + absolute <= now then
    redis.call('DEL', key)
    return 0
  end
else
  if created then
    created = tonumber(created)
    if created + absolute <= now then created = now end
  else
    created = now
    result = 2
  end
  redis.call('DEL', key)
end
redis.call('HSET', key, '@c', string.format('%.0f', created), '@s', string.format('%.0f', now))
for i = 5, 4 + 2 * n, 2 do
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
end
for i = 5 + 2 * n, #ARGV do
  redis.call('HDEL', key, ARGV[i])
end
redis.call('PEXPIRE', key, string.format('%.0f', math.ceil(math.min(idle, created + absolute - now))))
return result
