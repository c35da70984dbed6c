-- Reads the server's clock, so that every instance measures leases and windows on one clock.
-- (No KEYS.)
-- Returns  milliseconds since the epoch, as an integer
-- The multiplication is done in floating point on purpose: Redis's Lua 5.1 has only doubles, but the Lua 5.3
-- engine inside ioredis-mock has 32-bit integers, on which seconds * 1000 overflows. Scripts that do time
-- arithmetic follow the same rule.
local t = redis.call('TIME')
return math.floor(tonumber(t[1]) * 1000.0 + tonumber(t[2]) / 1000.0)
