-- Grants one of `limit` semaphore permits when one is free, with the next fencing token. Permits are members of a
-- sorted set scored by their expiry on the server's clock, so a crashed holder's permit lapses by itself. Waiters
-- register in the same step as the failed check (see mutex_acquire.lua).
-- KEYS[1]  holders (zset: token -> expiry in server ms)
-- KEYS[2]  last fencing token (expires an hour after the lease)
-- KEYS[3]  waiters by arrival (zset)
-- KEYS[4]  waiters by registration expiry (zset)
-- ARGV[1]  token of the caller
-- ARGV[2]  lease in ms
-- ARGV[3]  waiter id ('' when the caller will not wait)
-- ARGV[4]  how long a waiter registration lasts without being renewed, in ms
-- ARGV[5]  '1' for FIFO fairness
-- ARGV[6]  limit: most permits held at once
-- Returns  the fencing token (a string) when granted; otherwise ms until the first permit lapses (-1: unknown)
--!include now_ms.lua
--!include now_us.lua
--!include next_fence.lua
--!include waiters.lua
local now = now_ms()
local waiter = ARGV[3]
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
drop_lapsed_waiters(KEYS[3], KEYS[4], now)
local free = redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[6])
if free and ARGV[5] == '1' and someone_else_first(KEYS[3], waiter) then free = false end
if free then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(last[2]) - now) + 1)
  if waiter ~= '' then unregister_waiter(KEYS[3], KEYS[4], waiter) end
  return next_fence(KEYS[2], ARGV[2], now_us())
end
if waiter ~= '' then register_waiter(KEYS[3], KEYS[4], waiter, now, tonumber(ARGV[4])) end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then return math.ceil(tonumber(first[2]) - now) end
return -1
