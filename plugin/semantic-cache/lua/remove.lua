-- Removes entries by id (invalidation, a reported bad hit) and logs each removal for the other instances.
-- KEYS[1] entries hash
-- KEYS[2] expiry sorted set
-- KEYS[3] partition hash
-- KEYS[4] tags hash
-- KEYS[5] change log sorted set
-- KEYS[6] change sequence counter
-- ARGV[1] key base of the namespace ('prefix:semcache:{ns}')
-- ARGV[2] most change-log entries kept
-- ARGV[3] and on: entry ids
-- Returns the number of entries removed

local base = ARGV[1]
local seq = tonumber(redis.call('GET', KEYS[6]) or '0')
local removed = 0
for i = 3, #ARGV do
  local eid = ARGV[i]
  local p = redis.call('HGET', KEYS[3], eid)
  redis.call('ZREM', KEYS[2], eid)
  redis.call('HDEL', KEYS[1], eid)
  if p then
    redis.call('HDEL', KEYS[3], eid)
    redis.call('HDEL', base .. ':v:' .. p, eid)
    local tags = redis.call('HGET', KEYS[4], eid)
    if tags then
      for tag in string.gmatch(tags, '[^\n]+') do
        redis.call('SREM', base .. ':t:' .. tag, eid)
      end
      redis.call('HDEL', KEYS[4], eid)
    end
    seq = seq + 1
    redis.call('ZADD', KEYS[5], seq, string.format('%d', seq) .. '|d|' .. p .. '|' .. eid)
    removed = removed + 1
  end
end
if removed > 0 then
  redis.call('SET', KEYS[6], seq, 'KEEPTTL')
  redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -(tonumber(ARGV[2]) + 1))
end
return removed
