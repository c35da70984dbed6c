-- Stores one variant of a response, records the primary key's Vary spec and variant list, and gives the fill
-- lease back when the caller still holds it.
-- KEYS[1]  the primary key's Vary spec
-- KEYS[2]  the variant's entry
-- KEYS[3]  the primary key's fill lease
-- KEYS[4]  the index of the primary key's variant entry keys: a sorted set scored by when each entry is gone
-- ARGV[1]  Vary spec of the response
-- ARGV[2]  the caller's lease token ('' when it holds none)
-- ARGV[3]  freshness lifetime in ms
-- ARGV[4]  stale-while-revalidate window in ms
-- ARGV[5]  how long the entry is kept in ms (freshness + the longer of the stale windows)
-- ARGV[6]  the encoded response
-- Returns  the server time in ms at which the entry was stored (as a string)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000.0)
local freshUntil = now + tonumber(ARGV[3])
local staleUntil = freshUntil + tonumber(ARGV[4])
local keep = tonumber(ARGV[5])
redis.call('SET', KEYS[2], string.format('%.0f:%.0f:', freshUntil, staleUntil) .. ARGV[6], 'PX', ARGV[5])
-- The spec and the variant list live at least as long as the longest-lived variant (SET drops a TTL, so read it
-- first).
local specLeft = redis.call('PTTL', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
if specLeft > keep then redis.call('PEXPIRE', KEYS[1], specLeft) else redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
-- The index lives as long as its longest-lived variant, so while the key stays cached the entries of variants that
-- expired meanwhile are dropped here (their scores are past), as the tag indexes do. One second of margin: after a
-- slot migration or a failover the entry's expiry may run on another node's clock. Only declared keys are touched,
-- so a Cluster slot migration cannot split the script.
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. string.format('%.0f', now - 1000))
redis.call('ZADD', KEYS[4], string.format('%.0f', now + keep), KEYS[2])
if redis.call('PTTL', KEYS[4]) < keep then redis.call('PEXPIRE', KEYS[4], ARGV[5]) end
if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
return string.format('%.0f', now)
