-- Gives a fill lease back, only when the caller still holds it (a lease that expired may be someone else's now).
-- When the response could not be stored by policy (private, no-store, ...), the lease is replaced by a short-lived
-- marker '!' instead, so requests arriving meanwhile run their handlers at once rather than queue behind one filler
-- after another.
-- KEYS[1]  the fill lease
-- ARGV[1]  the caller's lease token
-- ARGV[2]  marker time to live in ms (0: no marker, just release)
-- Returns  1 when released, 0 when the caller did not hold it
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if tonumber(ARGV[2]) > 0 then
    redis.call('SET', KEYS[1], '!', 'PX', ARGV[2])
  else
    redis.call('DEL', KEYS[1])
  end
  return 1
end
return 0
