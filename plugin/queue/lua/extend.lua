-- Extends the leases of jobs a live worker is still running, so nobody else takes them over.
-- KEYS[1] active set (score: lease deadline)
-- ARGV[1] job hash key prefix (same hash tag as the key)
-- ARGV[2] lease in ms
-- ARGV[3..] pairs: id, delivery token (unique to one delivery of one job: see the delivery counter in move.lua)
-- Returns the ids whose lease was already lost (taken over or finished elsewhere)
-- ioredis-mock's Lua (fengari, 5.3) only converts tables built by a constructor; real Redis runs Lua 5.1.
local function reply(t)
  if _VERSION == 'Lua 5.1' then return t end
  return { table.unpack(t) }
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000)
local deadline = now + tonumber(ARGV[2])
local lost = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  -- Compared as numbers: ioredis-mock's Lua writes tokens as '1.0'.
  if tonumber(redis.call('HGET', ARGV[1] .. id, 'dl')) == tonumber(ARGV[i + 1]) and redis.call('ZSCORE', KEYS[1], id) then
    redis.call('ZADD', KEYS[1], deadline, id)
  else
    lost[#lost + 1] = id
  end
end
return reply(lost)
