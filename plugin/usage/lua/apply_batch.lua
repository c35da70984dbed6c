-- Applies one workspace's share of a usage flush exactly once. Each tracker numbers its batches 1, 2, 3, ... and
-- never sends batch n+1 before batch n is acknowledged, so remembering the highest number applied per tracker and
-- workspace is enough to recognise a retry of a batch whose first attempt did reach the server (a late reply, a
-- timeout): one small key per tracker and workspace, not one per flush.
-- The client sends each minute's increments once; this script adds them to the minute's hash and to the hour, day
-- and month hashes that contain it, so a flush carries a quarter of the arguments it would otherwise.
-- KEYS[1]  the tracker's applied-batch key, under the workspace's {tag}
-- KEYS[2..]  per minute section, four hashes: the minute's, its hour's, its day's and its month's (same {tag})
-- ARGV[1]  the batch number in its tracker
-- ARGV[2]  how long to remember the last applied number, ms (longer than any retry window)
-- ARGV[3..] per section, in KEYS order: four expire-at values (epoch ms, same order as its keys), field count f,
--           then f pairs of field, increment
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
for k = 2, #KEYS, 4 do
  local f = tonumber(ARGV[a + 4])
  local first = a + 5
  for i = 0, 3 do
    local key = KEYS[k + i]
    local b = first
    for _ = 1, f do
      -- pcall: one bad increment must not abort the script half-way through the workspace's share.
      local ok = redis.pcall('HINCRBY', key, ARGV[b], ARGV[b + 1])
      if type(ok) == 'table' and ok.err then
        refused = refused + 1
      end
      b = b + 2
    end
    -- The expiry is passed through as text: epoch ms do not fit ioredis-mock's 32-bit Lua integers.
    redis.pcall('PEXPIREAT', key, ARGV[a + i])
  end
  a = first + 2 * f
end
return { 1, refused }
