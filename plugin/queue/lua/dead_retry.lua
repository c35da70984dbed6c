-- Gives dead-lettered jobs a fresh set of attempts: they go back to the queue and their counters restart.
-- KEYS[1] dead-letter set
-- KEYS[2] waiting list
-- KEYS[3] prioritised set
-- ARGV[1] job hash key prefix (same hash tag as the keys)
-- ARGV[2] wake-up channel ('' for none)
-- ARGV[3] how many of the oldest to retry when no ids are given
-- ARGV[4..] ids to retry (none: the oldest ARGV[3])
-- Returns the number of jobs put back
local ids = {}
for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1) end
local n = 0
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  if redis.call('ZREM', KEYS[1], id) == 1 and redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'st', 'waiting', 'm', 0, 's', 0)
    local ps = redis.call('HGET', key, 'ps')
    if ps and ps ~= '' then
      redis.call('ZADD', KEYS[3], ps, id)
    else
      redis.call('LPUSH', KEYS[2], id)
    end
    n = n + 1
  end
end
if n > 0 and ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], '1') end
return n
