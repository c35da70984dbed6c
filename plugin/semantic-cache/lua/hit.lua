-- Reads one entry for a hit: its payload and expiry, or nothing when it is missing or expired. With a sliding
-- time to live the expiry is pushed forward; by default (absolute TTL) a hit changes nothing.
-- KEYS[1] entries hash (id -> payload JSON)
-- KEYS[2] expiry sorted set (id -> expiresAt ms)
-- ARGV[1] entry id
-- ARGV[2] sliding time to live in ms (0 = absolute expiry)
-- Returns { payload, expiresAt (string, ms) } or nil

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + tonumber(t[2]) / 1000.0
local exp = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not exp then return nil end
exp = tonumber(exp)
if exp <= now then return nil end
local payload = redis.call('HGET', KEYS[1], ARGV[1])
if not payload then return nil end
local slide = tonumber(ARGV[2])
if slide > 0 and now + slide > exp then
  exp = now + slide
  redis.call('ZADD', KEYS[2], string.format('%.0f', exp), ARGV[1])
  local keep = math.floor(slide) + 3600000
  for i = 1, 2 do
    if redis.call('PTTL', KEYS[i]) < keep then redis.call('PEXPIRE', KEYS[i], keep) end
  end
end
return { payload, string.format('%.0f', exp) }
