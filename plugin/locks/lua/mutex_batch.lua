-- Several callers' uncontended mutex steps (mutex_try.lua and mutex_release.lua) in one script call: what the
-- callers of one event-loop turn asked for, sent together (see batch.ts). Each step is exactly the step its own
-- script would run, and the whole call is atomic, so no step can observe another half-done. A step that fails
-- (a key of the wrong type, say) does not stop the others: its reply says so.
-- Not used on Redis Cluster, where the keys of different locks live on different nodes.
-- KEYS     two per step i: KEYS[2i-1] the owner key, KEYS[2i] the fencing counter ('a') or the waiters by
--          expiry ('r')
-- ARGV     three per step i: ARGV[3i-2] 'a' (acquire) or 'r' (release), ARGV[3i-1] the caller's token, ARGV[3i]
--          the lease in ms ('a') or the channel waiters listen on ('r')
-- Returns  one reply per step, as its own script would give it, or '!' followed by the error when it failed
--!include now_us.lua
--!include next_fence.lua
--!include try_mutex.lua
--!include release_mutex.lua
-- The server's clock, read once for the whole call (on the first grant) instead of once per grant; each further
-- grant of the call counts one µs on, so that grants of one call still get distinct tokens (a token stays above
-- its lock's last one either way: next_fence.lua).
local now
local function clock()
  if now then now = now + 1 else now = now_us() end
  return now
end
local replies = {}
local n = 0
for a = 1, #ARGV, 3 do
  n = n + 1
  local step = ARGV[a] == 'a' and try_mutex or release_mutex
  local ok, reply = pcall(step, KEYS[2 * n - 1], KEYS[2 * n], ARGV[a + 1], ARGV[a + 2], clock)
  if ok then
    replies[n] = reply
  else
    replies[n] = '!' .. tostring(type(reply) == 'table' and reply.err or reply)
  end
end
-- Returned through a table constructor: ioredis-mock's Lua (used in tests) drops tables filled index by index.
return { unpack(replies, 1, n) }
