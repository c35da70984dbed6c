-- Drops a waiter registration when the caller gives up (timeout, abort), so a FIFO queue does not wait for its
-- registration to lapse before serving the next waiter.
-- KEYS[1]  waiters by arrival (zset)
-- KEYS[2]  waiters by registration expiry (zset)
-- ARGV[1]  waiter id
-- Returns  1 when the waiter was registered, 0 otherwise
--!include waiters.lua
return unregister_waiter(KEYS[1], KEYS[2], ARGV[1])
