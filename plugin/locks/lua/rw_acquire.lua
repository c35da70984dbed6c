-- Grants a read or a write lease of a read/write lock, with the next fencing token. Readers share; a writer
-- excludes readers and other writers. A writer that has to wait raises a short-lived flag that keeps new readers
-- out, so a stream of readers cannot starve writers. Waiters register as in mutex_acquire.lua.
-- KEYS[1]  readers (zset: token -> expiry in server ms)
-- KEYS[2]  writer: the writing holder's token, expiring with its lease
-- KEYS[3]  last fencing token (expires an hour after the lease)
-- KEYS[4]  waiters by arrival (zset)
-- KEYS[5]  waiters by registration expiry (zset)
-- KEYS[6]  writer-waiting flag (expires unless a waiting writer renews it)
-- ARGV[1]  token of the caller
-- ARGV[2]  lease in ms
-- ARGV[3]  waiter id ('' when the caller will not wait)
-- ARGV[4]  how long a waiter registration (and the writer-waiting flag) lasts without being renewed, in ms
-- ARGV[5]  '1' for FIFO fairness
-- ARGV[6]  'r' to read, 'w' to write
-- Returns  the fencing token (a string) when granted; otherwise ms until a blocking lease ends (-1: unknown)
--!include now_ms.lua
--!include now_us.lua
--!include next_fence.lua
--!include waiters.lua
local now = now_ms()
local waiter = ARGV[3]
local ttl = tonumber(ARGV[2])
local lease = tonumber(ARGV[4])
local write = ARGV[6] == 'w'
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
drop_lapsed_waiters(KEYS[4], KEYS[5], now)
local wait = redis.call('PTTL', KEYS[2])
local free = wait < 0
if free and write then
  -- A writer waits for the last reader to leave.
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] then
    free = false
    wait = math.ceil(tonumber(last[2]) - now)
  end
elseif free and redis.call('EXISTS', KEYS[6]) == 1 then
  free = false
  wait = -1
end
if free and ARGV[5] == '1' and someone_else_first(KEYS[4], waiter) then free = false end
if free then
  if write then
    redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)
    redis.call('DEL', KEYS[6])
  else
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
    local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(last[2]) - now) + 1)
  end
  if waiter ~= '' then unregister_waiter(KEYS[4], KEYS[5], waiter) end
  return next_fence(KEYS[3], ARGV[2], now_us())
end
if waiter ~= '' then
  register_waiter(KEYS[4], KEYS[5], waiter, now, lease)
  if write then redis.call('SET', KEYS[6], '1', 'PX', lease) end
end
return wait
