-- Extends a mutex lease, only for its holder; the new lease runs from the server's now.
-- KEYS[1]  owner: the holder's token
-- ARGV[1]  token of the caller
-- ARGV[2]  new lease in ms
-- Returns  1 when extended, 0 when the caller no longer holds the lock
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
