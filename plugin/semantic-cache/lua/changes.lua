-- What changed in a namespace since a sequence number: the follower side of cross-instance sync. Added entries
-- come with their vector record, so a follower updates its index without another round trip.
-- KEYS[1] change log sorted set
-- KEYS[2] change sequence counter
-- ARGV[1] last sequence number the caller has applied
-- ARGV[2] most changes returned
-- ARGV[3] key base of the namespace ('prefix:semcache:{ns}')
-- Returns { seq, oldest logged seq, change 1, record 1, change 2, record 2, ... } (record '' unless an add)

local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local oldest = seq + 1
if first[2] then oldest = tonumber(first[2]) end
local out = { seq, oldest }
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
for _, item in ipairs(items) do
  local op, p, eid = string.match(item, '^[^|]*|([^|]*)|([^|]*)|(.*)$')
  out[#out + 1] = item
  if op == 'a' then
    out[#out + 1] = redis.call('HGET', ARGV[3] .. ':v:' .. p, eid) or ''
  else
    out[#out + 1] = ''
  end
end
return out
