-- Extends one semaphore permit (or read lease), only while it is still held; the new lease runs from the
-- server's now.
-- KEYS[1]  holders (zset: token -> expiry in server ms)
-- ARGV[1]  token of the caller
-- ARGV[2]  new lease in ms
-- Returns  1 when extended, 0 when the permit has lapsed or was released
--!include now_ms.lua
local now = now_ms()
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= now then return 0 end
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
local remaining = math.ceil(expiry - now) + 1
if redis.call('PTTL', KEYS[1]) < remaining then redis.call('PEXPIRE', KEYS[1], remaining) end
return 1
