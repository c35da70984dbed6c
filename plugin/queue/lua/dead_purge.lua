-- Deletes dead-lettered jobs for good.
-- KEYS[1] dead-letter set
-- ARGV[1] job hash key prefix (same hash tag as the key)
-- ARGV[2] how many of the oldest to delete when no ids are given
-- ARGV[3..] ids to delete (none: the oldest ARGV[2])
-- Returns the number of jobs deleted
local ids = {}
for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1) end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('DEL', ARGV[1] .. id)
    n = n + 1
  end
end
return n
