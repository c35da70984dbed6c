-- Gives a fill lease back, only when the caller still holds it (a lease that expired may be someone else's now).
-- KEYS[1]  the fill lease
-- ARGV[1]  the caller's lease token
-- Returns  1 when released, 0 when the caller did not hold it
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
