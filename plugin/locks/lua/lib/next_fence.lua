-- The next fencing token: `now`, the server's clock in microseconds (now_us.lua), or one more than the last token
-- when that is higher (several grants within one microsecond or one script call, a clock stepped back). Tokens
-- therefore keep increasing even after the counter key has expired, so it can expire an hour after the lease
-- instead of living for ever.
-- Tokens are written with '%d', and the last one is compared as text when it has as many digits as `now` (every
-- token for the next two centuries): formatting a double with '%.0f' and parsing it back were a tenth of Redis's
-- CPU time for an uncontended acquire + release.
-- '%.0f' remains where '%d' cannot take a token: the Lua of ioredis-mock (fengari, used in tests) has 32-bit integers.
local FENCE_FORMAT = pcall(string.format, '%d', 2 ^ 53) and '%d' or '%.0f'
local function next_fence(key, ttl, now)
  local text = string.format(FENCE_FORMAT, now)
  local last = redis.call('GET', key)
  if last and ((#last == #text and last >= text) or (#last ~= #text and tonumber(last) >= now)) then
    text = string.format(FENCE_FORMAT, tonumber(last) + 1)
  end
  redis.call('SET', key, text, 'PX', string.format(FENCE_FORMAT, ttl + 3600000))
  return text
end
