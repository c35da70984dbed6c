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
