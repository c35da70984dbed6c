-- The server's clock in milliseconds (fractional): every lease and waiter deadline is on this one clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000.0 + tonumber(t[2]) / 1000.0
end
