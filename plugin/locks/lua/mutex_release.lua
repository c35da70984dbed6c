-- Releases a mutex (or a write lease), only for its holder, and wakes waiters through pub/sub when any are
-- registered.
-- KEYS[1]  owner: the holder's token
-- KEYS[2]  waiters by registration expiry (zset)
-- ARGV[1]  token of the caller
-- ARGV[2]  channel the waiters listen on
-- Returns  1 when released, 0 when the caller did not hold the lock
--!include release_mutex.lua
return release_mutex(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
