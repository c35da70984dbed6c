-- Adds an entry to a tag's member set, unless the tag was invalidated after the response began to be computed
-- (then the entry may hold data from before the invalidation, and the caller deletes it).
-- The writer stores the entry first and registers it here second, and invalidation records its time before it
-- reads the member set: so an entry either is in the set when it is purged, or sees the purge time here.
-- KEYS[1]  the tag's member set
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
redis.call('SADD', KEYS[1], ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
