-- Reads the events of a channel's history that come after a given id (replay after a reconnect, and polling on
-- stores without subscriptions). Ids are consecutive, so the wanted entries are the last (current - after) ones.
-- KEYS[1] the channel's sequence counter (string)
-- KEYS[2] the channel's history (list, oldest first, each element "<id> <payload>")
-- ARGV[1] the last id the reader has (-1: only the current id is wanted)
-- Returns {current id, {entries after ARGV[1], oldest first}}; when ARGV[1] is ahead of the current id (the
-- history expired and restarted) every held entry is returned. (Replies are built from literal tables and command
-- replies only: ioredis-mock's Lua cannot return a table grown with table.insert.)
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local after = tonumber(ARGV[1])
if after < 0 or after == current then
  return {current, {}}
end
local wanted = current - after
if after > current then
  wanted = current
end
-- Never ask past the start of the list (Redis clamps the range itself; ioredis-mock does not).
local held = redis.call('LLEN', KEYS[2])
if wanted > held then
  wanted = held
end
if wanted == 0 then
  return {current, {}}
end
return {current, redis.call('LRANGE', KEYS[2], -wanted, -1)}
