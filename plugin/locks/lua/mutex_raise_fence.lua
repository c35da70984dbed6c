-- Quorum mode: raises a mutex's last fencing token to the token the holder was handed (the highest of a majority
-- of servers), only while that holder still holds the lock here. Every later grant on this server is then above
-- it, which is what makes the quorum's tokens increase (see quorum.ts).
-- KEYS[1]  owner: the holder's token
-- KEYS[2]  last fencing token
-- ARGV[1]  token of the caller
-- ARGV[2]  floor: the fencing token handed out
-- ARGV[3]  lease in ms (the counter outlives it by an hour, as in next_fence.lua)
-- Returns  1 when the caller holds the lock (the counter is at least the floor now), 0 otherwise
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local floor = tonumber(ARGV[2])
if floor > tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], string.format('%.0f', floor), 'PX', tonumber(ARGV[3]) + 3600000)
end
return 1
