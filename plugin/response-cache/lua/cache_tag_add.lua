-- Adds an entry to a tag's member index, unless the tag was invalidated after the response began to be computed
-- (then the entry may hold data from before the invalidation, and the caller deletes it).
-- The writer stores the entry first and registers it here second, and invalidation records its time before it
-- reads the members: so an entry either is a member when it is purged, or sees the purge time here.
-- The index is a sorted set scored by when each member's entry is gone (server time); members past that are
-- dropped here, so a tag that keeps getting new entries does not keep the keys of every expired one.
-- (An earlier version kept a plain set under another key: left alone here, read by the purge.)
-- KEYS[1]  the tag's member index
-- KEYS[2]  the tag's last invalidation time
-- ARGV[1]  the entry key
-- ARGV[2]  server time in ms at which the handler started
-- ARGV[3]  how long the entry is kept in ms
-- ARGV[4]  clock allowance in ms (entry and tag may live on different Cluster nodes with different clocks)
-- Returns  1 when registered, 0 when the tag was invalidated since the handler started
local invalidated = redis.call('GET', KEYS[2])
if invalidated and tonumber(invalidated .. '.0') >= tonumber(ARGV[2] .. '.0') - tonumber(ARGV[4]) then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000.0)
local keep = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not current or tonumber(current) < now + keep then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + keep), ARGV[1])
end
local left = redis.call('PTTL', KEYS[1])
if left < keep then redis.call('PEXPIRE', KEYS[1], keep) end
return 1
