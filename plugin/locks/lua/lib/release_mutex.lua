-- The release of a mutex (or write lease), shared by mutex_release.lua and mutex_batch.lua: only for its holder,
-- waking waiters through pub/sub when any are registered. Returns 1 when released, 0 when `token` did not hold it.
local function release_mutex(owner, waiters, token, channel)
  if redis.call('GET', owner) ~= token then return 0 end
  redis.call('DEL', owner)
  if redis.call('EXISTS', waiters) == 1 then redis.call('PUBLISH', channel, '1') end
  return 1
end
