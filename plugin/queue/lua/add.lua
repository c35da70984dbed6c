-- Adds one or more jobs to a queue in one step: each gets a hash, then goes to the waiting list, the prioritised
-- set or the delayed set. A job with a custom id that already exists is left alone (adding is idempotent). Wakes
-- idle workers (one PUBLISH) only when the queue was empty or a new delayed job became the earliest.
-- KEYS[1] waiting list (LPUSH in, RPOP out)
-- KEYS[2] prioritised set (score: priority, then arrival)
-- KEYS[3] delayed set (score: due time in ms)
-- KEYS[4] id counter
-- ARGV[1] job hash key prefix (same hash tag as the keys)
-- ARGV[2] wake-up channel ('' for none)
-- ARGV[3..] per job, 6 values: custom id ('' for a new one), data (JSON), delay ms, priority, attempts, backoff
-- Returns { id, added (1 new, 0 already there), id, added, ... }
-- ioredis-mock's Lua (fengari, 5.3) only converts tables built by a constructor; real Redis runs Lua 5.1.
local function reply(t)
  if _VERSION == 'Lua 5.1' then return t end
  return { table.unpack(t) }
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000)
local jk = ARGV[1]
local out = {}
local wake = false
for i = 3, #ARGV, 6 do
  local id = ARGV[i]
  local fresh = true
  if id == '' then
    id = tostring(math.floor(redis.call('INCR', KEYS[4])))
  elseif redis.call('EXISTS', jk .. id) == 1 then
    fresh = false
  end
  out[#out + 1] = id
  if fresh then
    out[#out + 1] = 1
    local key = jk .. id
    local delay = tonumber(ARGV[i + 2])
    local prio = tonumber(ARGV[i + 3])
    local state = 'waiting'
    if delay > 0 then state = 'delayed' end
    -- Only what differs from the defaults is stored (attempts 1, no priority, counters 0): fewer fields, faster adds.
    redis.call('HSET', key, 'd', ARGV[i + 1], 't', now, 'st', state)
    if ARGV[i + 4] ~= '1' then redis.call('HSET', key, 'a', ARGV[i + 4], 'b', ARGV[i + 5]) end
    local ps = nil
    if prio > 0 then
      -- priority, then a 10-digit arrival number: exact as a double up to priority 100000
      ps = ARGV[i + 3] .. string.format('%010d', redis.call('INCR', KEYS[4]) % 10000000000)
      redis.call('HSET', key, 'p', prio, 'ps', ps)
    end
    if delay > 0 then
      local due = now + delay
      redis.call('HSET', key, 'rt', due)
      redis.call('ZADD', KEYS[3], due, id)
      if redis.call('ZRANGE', KEYS[3], 0, 0)[1] == id then wake = true end
    elseif ps then
      if redis.call('ZADD', KEYS[2], ps, id) == 1 and redis.call('ZCARD', KEYS[2]) == 1 and
        redis.call('LLEN', KEYS[1]) == 0 then wake = true end
    elseif redis.call('LPUSH', KEYS[1], id) == 1 and redis.call('ZCARD', KEYS[2]) == 0 then
      -- the queue was empty: workers may be asleep
      wake = true
    end
  else
    out[#out + 1] = 0
  end
end
if wake and ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], '1') end
return reply(out)
