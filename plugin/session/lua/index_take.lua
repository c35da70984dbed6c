-- Takes every session id out of an index except the ones named, atomically, for "log out everywhere": the caller
-- then destroys each returned session (each lives in its own slot on a Cluster).
-- KEYS[1]  the index (sorted set of session ids)
-- ARGV[1..]  ids to keep
-- Returns  the ids taken out
local keep = {}
for i = 1, #ARGV do keep[ARGV[i]] = true end
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local taken = {}
for _, id in ipairs(ids) do
  if not keep[id] then
    redis.call('ZREM', KEYS[1], id)
    taken[#taken + 1] = id
  end
end
return taken
