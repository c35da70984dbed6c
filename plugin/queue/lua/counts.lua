-- Reads the size of every part of a queue in one round trip.
-- KEYS[1] waiting list
-- KEYS[2] prioritised set
-- KEYS[3] delayed set
-- KEYS[4] active set
-- KEYS[5] completed set
-- KEYS[6] dead-letter set
-- KEYS[7] paused flag
-- Returns { waiting, prioritised, delayed, active, completed, dead, paused }
return {
  redis.call('LLEN', KEYS[1]),
  redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]),
  redis.call('ZCARD', KEYS[5]),
  redis.call('ZCARD', KEYS[6]),
  redis.call('EXISTS', KEYS[7]),
}
