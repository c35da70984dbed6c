-- The uncontended fast path of a mutex: takes a free lock and its next fencing token with no waiter bookkeeping.
-- Used for a caller's first attempt when FIFO fairness is off; waiting callers use mutex_acquire.lua.
-- KEYS[1]  owner: the holder's token, expiring with the lease
-- KEYS[2]  last fencing token (expires an hour after the lease)
-- ARGV[1]  token of the caller
-- ARGV[2]  lease in ms
-- Returns  { 1, fencing token } when granted, { 0, ms until the holder's lease ends (-1: unknown) } otherwise
-- The next fencing token: the server's clock in microseconds, or one more than the last token when that is
-- higher (several grants within one microsecond, a clock stepped back). Tokens therefore keep increasing even
-- after the counter key has expired, so it can expire an hour after the lease instead of living for ever.
local function next_fence(key, ttl)
  local t = redis.call('TIME')
  local token = tonumber(t[1]) * 1000000.0 + tonumber(t[2])
  local last = tonumber(redis.call('GET', key) or '0')
  if last + 1 > token then token = last + 1 end
  local text = string.format('%.0f', token)
  redis.call('SET', key, text, 'PX', tonumber(ttl) + 3600000)
  return text
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return { 1, next_fence(KEYS[2], ARGV[2]) }
end
return { 0, redis.call('PTTL', KEYS[1]) }
