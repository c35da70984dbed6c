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
-- Returns  { 1, fencing token } when granted, { 0, ms until the holder's lease ends (-1: unknown) } otherwise
--!include next_fence.lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + tonumber(t[2]) / 1000.0
local waiter = ARGV[3]
if redis.call('EXISTS', KEYS[4]) == 1 then
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 100)
  if #lapsed > 0 then
    redis.call('ZREM', KEYS[4], unpack(lapsed))
    redis.call('ZREM', KEYS[3], unpack(lapsed))
  end
end
local free = redis.call('EXISTS', KEYS[1]) == 0
if free and ARGV[5] == '1' then
  local head = redis.call('ZRANGE', KEYS[3], 0, 0)
  if head[1] and head[1] ~= waiter then free = false end
end
if free then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if waiter ~= '' then
    redis.call('ZREM', KEYS[3], waiter)
    redis.call('ZREM', KEYS[4], waiter)
  end
  return { 1, next_fence(KEYS[2], ARGV[2]) }
end
if waiter ~= '' then
  local lease = tonumber(ARGV[4])
  redis.call('ZADD', KEYS[3], 'NX', now, waiter)
  redis.call('ZADD', KEYS[4], now + lease, waiter)
  redis.call('PEXPIRE', KEYS[3], lease)
  redis.call('PEXPIRE', KEYS[4], lease)
end
return { 0, redis.call('PTTL', KEYS[1]) }
