-- Drops a whole namespace: every entry, vector and tag set, and logs one reset so other instances drop their
-- in-process indexes of it. The sequence counter survives, so followers see the reset instead of a restart.
-- KEYS[1] entries hash
-- KEYS[2] expiry sorted set
-- KEYS[3] partition hash
-- KEYS[4] tags hash
-- KEYS[5] change log sorted set
-- KEYS[6] change sequence counter
-- ARGV[1] key base of the namespace ('prefix:semcache:{ns}')
-- Returns the number of entries removed

local base = ARGV[1]
local removed = redis.call('HLEN', KEYS[3])
local partitions = {}
local flat = redis.call('HGETALL', KEYS[3])
for i = 2, #flat, 2 do partitions[flat[i]] = true end
for p, _ in pairs(partitions) do redis.call('DEL', base .. ':v:' .. p) end
local tags = redis.call('HVALS', KEYS[4])
for _, joined in ipairs(tags) do
  for tag in string.gmatch(joined, '[^\n]+') do redis.call('DEL', base .. ':t:' .. tag) end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
local seq = tonumber(redis.call('GET', KEYS[6]) or '0') + 1
redis.call('SET', KEYS[6], seq, 'PX', 86400000)
redis.call('ZADD', KEYS[5], seq, string.format('%d', seq) .. '|r||')
redis.call('PEXPIRE', KEYS[5], 86400000)
return removed
