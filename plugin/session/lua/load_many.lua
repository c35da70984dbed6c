-- Reads several sessions in one call: the session middleware sends the reads of the requests that arrived in one
-- turn of the event loop together (a read alone in its turn is a plain HGETALL). Each read is exactly HGETALL:
-- no write, no clock; expiry is the key's own, as for a single read.
-- KEYS[1]  (KEYS[j] for read j) a session hash
-- Returns  per key, the length of its HGETALL reply, then that reply (field, value, field, value, ...), one flat
--          list for all keys
local out = {}
local n = 0
for j = 1, #KEYS do
  local h = redis.call('HGETALL', KEYS[j])
  n = n + 1
  out[n] = #h
  for i = 1, #h do out[n + i] = h[i] end
  n = n + #h
end
-- ioredis-mock (the one engine without a struct library) only converts tables built by a constructor.
if struct then return out end
local unpack = unpack or table.unpack
return { unpack(out) }
