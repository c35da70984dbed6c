-- Invalidates a tag: records when (so a fill that started before now cannot register afterwards), and takes
-- the members, which the caller then deletes entry by entry (entries live in other Cluster slots).
-- KEYS[1]  the tag's member index (a sorted set)
-- KEYS[2]  the tag's last invalidation time
-- KEYS[3]  the plain member set an earlier version kept (read and deleted too, so a rolling deploy loses nothing)
-- ARGV[1]  how long the invalidation time is remembered in ms (longer than any handler runs)
-- Returns  the entry keys that were tagged
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000.0)
redis.call('SET', KEYS[2], string.format('%.0f', now), 'PX', ARGV[1])
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  members[#members + 1] = member
end
redis.call('DEL', KEYS[1], KEYS[3])
return members
