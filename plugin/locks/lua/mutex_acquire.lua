-- Grants a mutex lease when the lock is free, and takes the next fencing token in the same step. A caller that is
-- going to wait registers itself as a waiter here, in the same script as the failed check, so a release that
-- happens right after cannot miss it (the release publishes only when waiters are registered).
-- KEYS[1]  owner: the holder's token, expiring with the lease
-- KEYS[2]  last fencing token (expires an hour after the lease)
-- KEYS[3]  waiters by arrival (zset: waiter id -> first-seen server ms)
-- KEYS[4]  waiters by registration expiry (zset: waiter id -> server ms after which it is dropped)
-- ARGV[1]  token of the caller
-- ARGV[2]  lease in ms
-- ARGV[3]  waiter id ('' when the caller will not wait)
-- ARGV[4]  how long a waiter registration lasts without being renewed, in ms
-- ARGV[5]  '1' for FIFO fairness: the lock goes to the longest-waiting live waiter first
-- Returns  the fencing token (a string) when granted; otherwise ms until the holder's lease ends (-1: unknown)
--!include now_ms.lua
--!include now_us.lua
--!include next_fence.lua
--!include waiters.lua
local now = now_ms()
local waiter = ARGV[3]
drop_lapsed_waiters(KEYS[3], KEYS[4], now)
local free = redis.call('EXISTS', KEYS[1]) == 0
if free and ARGV[5] == '1' and someone_else_first(KEYS[3], waiter) then free = false end
if free then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if waiter ~= '' then unregister_waiter(KEYS[3], KEYS[4], waiter) end
  return next_fence(KEYS[2], ARGV[2], now_us())
end
if waiter ~= '' then register_waiter(KEYS[3], KEYS[4], waiter, now, tonumber(ARGV[4])) end
return redis.call('PTTL', KEYS[1])
