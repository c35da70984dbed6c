-- Gives a semaphore permit (or read lease) back, and wakes waiters through pub/sub when any are registered.
-- KEYS[1]  holders (zset: token -> expiry in server ms)
-- KEYS[2]  waiters by registration expiry (zset)
-- ARGV[1]  token of the caller
-- ARGV[2]  channel the waiters listen on
-- Returns  1 when released, 0 when the caller held no live permit
--!include now_ms.lua
local now = now_ms()
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(score) <= now then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PUBLISH', ARGV[2], '1') end
return 1
