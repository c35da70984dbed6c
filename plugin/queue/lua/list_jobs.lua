-- Reads a page of jobs from one of a queue's sets (oldest first), with their fields, in one round trip.
-- KEYS[1] the set (dead-letter or completed)
-- ARGV[1] job hash key prefix (same hash tag as the key)
-- ARGV[2] first rank
-- ARGV[3] last rank
-- Returns { id, { field, value, ... }, id, { ... }, ... }
-- ioredis-mock's Lua (fengari, 5.3) only converts tables built by a constructor; real Redis runs Lua 5.1.
local function reply(t)
  if _VERSION == 'Lua 5.1' then return t end
  return { table.unpack(t) }
end
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]))) do
  out[#out + 1] = id
  out[#out + 1] = reply(redis.call('HGETALL', ARGV[1] .. id))
end
return reply(out)
