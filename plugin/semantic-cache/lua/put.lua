-- Stores one semantic-cache entry: purges a few expired entries, evicts the soonest-expiring ones past the
-- namespace's size cap, writes the payload, expiry, vector record and tags, and appends to the change log that
-- other instances follow. Every key is under the namespace's hash tag (one Cluster slot); vector and tag keys of
-- evicted entries are named from ARGV[9] inside that same slot.
-- KEYS[1] entries hash (id -> payload JSON)
-- KEYS[2] expiry sorted set (id -> expiresAt ms, to the microsecond)
-- KEYS[3] partition hash (id -> partition)
-- KEYS[4] tags hash (id -> tag hashes joined by newlines)
-- KEYS[5] change log sorted set (seq -> 'seq|op|partition|id')
-- KEYS[6] change sequence counter
-- KEYS[7] vector hash of the entry's partition (id -> 'expiresAt|vector|meta')
-- KEYS[8] and on: tag sets of the entry (tag -> ids)
-- ARGV[1] entry id
-- ARGV[2] payload JSON
-- ARGV[3] vector record without its expiry ('vector|meta')
-- ARGV[4] time to live in ms
-- ARGV[5] partition
-- ARGV[6] tag hashes joined by newlines ('' for none)
-- ARGV[7] most entries in the namespace
-- ARGV[8] most change-log entries kept
-- ARGV[9] key base of the namespace ('prefix:semcache:{ns}')
-- ARGV[10] most expired entries purged by this call
-- Returns { seq, expiresAt (string, ms), evicted count }

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + tonumber(t[2]) / 1000.0
local id = ARGV[1]
local base = ARGV[9]
local expiresAt = now + tonumber(ARGV[4])
local seq = tonumber(redis.call('GET', KEYS[6]) or '0')

local function log(op, p, eid)
  seq = seq + 1
  redis.call('ZADD', KEYS[5], seq, string.format('%d', seq) .. '|' .. op .. '|' .. p .. '|' .. eid)
end

local function drop(eid)
  redis.call('ZREM', KEYS[2], eid)
  local p = redis.call('HGET', KEYS[3], eid)
  if not p then
    redis.call('HDEL', KEYS[1], eid)
    return 0
  end
  redis.call('HDEL', KEYS[1], eid)
  redis.call('HDEL', KEYS[3], eid)
  redis.call('HDEL', base .. ':v:' .. p, eid)
  local tags = redis.call('HGET', KEYS[4], eid)
  if tags then
    for tag in string.gmatch(tags, '[^\n]+') do
      redis.call('SREM', base .. ':t:' .. tag, eid)
    end
    redis.call('HDEL', KEYS[4], eid)
  end
  log('d', p, eid)
  return 1
end

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[10]))
for _, eid in ipairs(expired) do
  if eid ~= id then drop(eid) end
end

local evicted = 0
if redis.call('HEXISTS', KEYS[3], id) == 1 then
  drop(id)
else
  local n = redis.call('ZCARD', KEYS[2])
  local cap = tonumber(ARGV[7])
  while n >= cap do
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
    if not oldest then break end
    drop(oldest)
    evicted = evicted + 1
    n = n - 1
  end
end

local exp = string.format('%.0f', expiresAt)
redis.call('HSET', KEYS[1], id, ARGV[2])
-- The expiry set keeps microseconds: entries stored in the same millisecond are still evicted oldest first (a tie
-- would be broken by id, at random).
redis.call('ZADD', KEYS[2], string.format('%.3f', expiresAt), id)
redis.call('HSET', KEYS[3], id, ARGV[5])
redis.call('HSET', KEYS[7], id, exp .. '|' .. ARGV[3])
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[4], id, ARGV[6])
  for i = 8, #KEYS do
    redis.call('SADD', KEYS[i], id)
  end
end
log('a', ARGV[5], id)
redis.call('SET', KEYS[6], seq)
redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -(tonumber(ARGV[8]) + 1))

-- The namespace's keys live as long as its longest-lived entry, plus an hour, so an abandoned namespace vanishes.
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local keep = math.floor(tonumber(last[2]) - now) + 3600000
for i = 1, #KEYS do
  if redis.call('PTTL', KEYS[i]) < keep then redis.call('PEXPIRE', KEYS[i], keep) end
end
return { seq, exp, evicted }
