-- Deletes a session and, when asked, leaves a tombstone in its place for a while: a login that indexed this id
-- just before a revoke-all took the index, and creates the session just after, finds the tombstone and fails
-- instead of bringing back a session the user asked to end.
-- KEYS[1]  the session hash
-- ARGV[1]  how long the tombstone stays, in ms (0: no tombstone)
-- Returns  the user id the session was logged in as, or false
local user = redis.call('HGET', KEYS[1], '@u')
redis.call('DEL', KEYS[1])
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  redis.call('HSET', KEYS[1], '@x', '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return user
