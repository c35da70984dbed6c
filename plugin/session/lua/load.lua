-- Reads a session in one round trip and enforces both timeouts on the server's clock: a session idle for longer
-- than the idle timeout, or older than the absolute lifetime, is deleted and reported missing. A live session
-- whose last-seen stamp is older than the touch interval is touched (stamp and expiry moved), so reads cost at
-- most one write per interval.
-- KEYS[1]  the session hash (user fields, plus metadata fields starting with '@')
-- ARGV[1]  idle timeout in ms
-- ARGV[2]  absolute lifetime in ms
-- ARGV[3]  touch interval in ms
-- Returns  the hash as a flat field/value array (HGETALL), or false when there is no live session
local all = redis.call('HGETALL', KEYS[1])
if #all == 0 then return false end
local created, seen
for i = 1, #all, 2 do
  local f = all[i]
  if f == '@c' then created = tonumber(all[i + 1])
  elseif f == '@s' then seen = tonumber(all[i + 1])
  elseif f == '@x' then return false end
end
if not created or not seen then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000.0)
local idle = tonumber(ARGV[1]) + 0.0
local left = created + tonumber(ARGV[2]) - now
if now - seen >= idle or left <= 0 then
  redis.call('DEL', KEYS[1])
  return false
end
if now - seen >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], '@s', string.format('%.0f', now))
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.ceil(math.min(idle, left))))
end
return all
