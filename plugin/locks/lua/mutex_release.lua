-- Releases a mutex, only for its holder, and wakes waiters through pub/sub when any are registered.
-- KEYS[1]  owner: the holder's token
-- KEYS[2]  waiters by registration expiry (zset)
-- ARGV[1]  token of the caller
-- ARGV[2]  channel the waiters listen on
-- Returns  1 when released, 0 when the caller did not hold the lock
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PUBLISH', ARGV[2], '1') end
return 1
