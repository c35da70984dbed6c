-- Applies one workspace's share of a usage flush exactly once. Each tracker numbers its batches 1, 2, 3, ... and
-- never sends batch n+1 before batch n is acknowledged, so remembering the highest number applied per tracker and
-- workspace is enough to recognise a retry of a batch whose first attempt did reach the server (a late reply, a
-- timeout): one small key per tracker and workspace, not one per flush.
-- KEYS[1]  the tracker's applied-batch key, under the workspace's {tag}
-- KEYS[2..n+1]  the counter hashes of this batch, under the same {tag}
-- ARGV[1]  the batch number in its tracker
-- ARGV[2]  how long to remember the last applied number, ms (longer than any retry window)
-- ARGV[3..] per hash, in KEYS order: expire-at (epoch ms), field count f, then f pairs of field, increment
-- Returns  { 1 when applied now, 0 when this batch (or a later one) had already been applied;
--            increments the server refused (e.g. a non-integer, or a key of another type): the rest still applies }
local seq = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if last >= seq then
  return { 0, 0 }
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local a = 3
local refused = 0
for i = 2, #KEYS do
  local key = KEYS[i]
  local expireAt = ARGV[a]
  local f = tonumber(ARGV[a + 1])
  a = a + 2
  for _ = 1, f do
    -- pcall: one bad increment must not abort the script half-way through the workspace's share.
    local ok = redis.pcall('HINCRBY', key, ARGV[a], ARGV[a + 1])
    if type(ok) == 'table' and ok.err then
      refused = refused + 1
    end
    a = a + 2
  end
  -- The expiry is passed through as text: epoch ms do not fit ioredis-mock's 32-bit Lua integers.
  redis.pcall('PEXPIREAT', key, expireAt)
end
return { 1, refused }
