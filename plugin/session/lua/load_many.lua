-- Reads several sessions in one call: the session middleware sends the reads of the requests that arrived in one
-- turn of the event loop together (a read alone in its turn is a plain HGETALL). Each read is exactly HGETALL:
-- no write, no clock; expiry is the key's own, as for a single read. A key that cannot be read (not a hash: a
-- string left under the same prefix by something else) fails its own read only.
-- KEYS[1]  (KEYS[j] for read j) a session hash
-- Returns  per key, the length of its HGETALL reply, then that reply (field, value, field, value, ...), or -1 and
--          the error message for a key whose HGETALL failed; one flat list for all keys
local out = {}
local n = 0
for j = 1, #KEYS do
  local h = redis.pcall('HGETALL', KEYS[j])
  if h.err then
    out[n + 1] = -1
    out[n + 2] = h.err
    n = n + 2
  else
    n = n + 1
    out[n] = #h
    for i = 1, #h do out[n + i] = h[i] end
    n = n + #h
  end
end
if struct then return out end
-- ioredis-mock (the one engine here without a struct library) only converts tables built by a constructor, and
-- unpack() refuses more than a few thousand values: a larger batch asks to be read one by one.
if n > 4000 then return redis.error_reply('ERR load_many: reply too large for this engine, read one by one') end
local unpack = unpack or table.unpack
return { unpack(out) }
