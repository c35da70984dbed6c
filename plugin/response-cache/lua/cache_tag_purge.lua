-- Invalidates a tag: records when (so a fill that started before now cannot register afterwards), and takes
-- the members, which the caller then deletes entry by entry (entries live in other Cluster slots).
-- KEYS[1]  the tag's member index (a sorted set; a plain set from an earlier version is read too)
-- KEYS[2]  the tag's last invalidation time
-- ARGV[1]  how long the invalidation time is remembered in ms (longer than any handler runs)
-- Returns  the entry keys that were tagged
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000.0)
redis.call('SET', KEYS[2], string.format('%.0f', now), 'PX', ARGV[1])
local members
if redis.call('TYPE', KEYS[1]).ok == 'set' then
  members = redis.call('SMEMBERS', KEYS[1])
else
  members = redis.call('ZRANGE', KEYS[1], 0, -1)
end
redis.call('DEL', KEYS[1])
return members
