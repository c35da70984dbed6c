-- Reads one entry for a hit: the first of the given ids that exists and has not expired, with its payload and
-- expiry. A lookup passes the exact-match id first and then the vector candidates that passed the guards, so a hit
-- of either kind costs one round trip. With a sliding time to live the expiry is pushed forward; by default
-- (absolute TTL) a hit changes nothing.
-- KEYS[1] entries hash (id -> payload JSON)
-- KEYS[2] expiry sorted set (id -> expiresAt ms, to the microsecond)
-- ARGV[1] sliding time to live in ms (0 = absolute expiry)
-- ARGV[2..] entry ids, in order of preference
-- Returns { id, payload, expiresAt (string, ms) } or nil

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + tonumber(t[2]) / 1000.0
local slide = tonumber(ARGV[1])
for i = 2, #ARGV do
  local id = ARGV[i]
  local exp = redis.call('ZSCORE', KEYS[2], id)
  exp = exp and tonumber(exp)
  if exp and exp > now then
    local payload = redis.call('HGET', KEYS[1], id)
    if payload then
      if slide > 0 and now + slide > exp then
        exp = now + slide
        redis.call('ZADD', KEYS[2], string.format('%.3f', exp), id)
        local keep = math.floor(slide) + 3600000
        for k = 1, 2 do
          if redis.call('PTTL', KEYS[k]) < keep then redis.call('PEXPIRE', KEYS[k], keep) end
        end
      end
      return { id, payload, string.format('%.0f', exp) }
    end
  end
end
return nil
