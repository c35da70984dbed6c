-- The server's clock in whole microseconds: the base of the fencing tokens.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000.0 + tonumber(t[2])
end
