-- Forgets ids a reader found without session data, but only those indexed long enough ago: a login indexes its new
-- id before it creates the session, so an id younger than the grace period may belong to a session still being made.
-- Forgetting it would leave that session alive yet unlisted, and "log out everywhere" would miss it.
-- KEYS[1]  the index (sorted set: session id -> deadline in epoch ms, that is the moment it was indexed + absolute)
-- ARGV[1]  absolute lifetime in ms
-- ARGV[2]  grace period in ms
-- ARGV[3..] ids to forget
-- Returns  how many ids were removed
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000.0)
local newest = now + (tonumber(ARGV[1]) + 0.0) - (tonumber(ARGV[2]) + 0.0)
local removed = 0
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= newest then
    redis.call('ZREM', KEYS[1], ARGV[i])
    removed = removed + 1
  end
end
return removed
