-- The uncontended grant of a mutex, shared by mutex_try.lua and mutex_batch.lua (needs next_fence.lua before it):
-- takes a free lock and its next fencing token (a string); otherwise ms until the holder's lease ends (-1: unknown).
-- `clock` gives the server's time in µs: a batch reads TIME once for all its grants (one command fewer each).
local function try_mutex(owner, fence, token, ttl, clock)
  if redis.call('SET', owner, token, 'NX', 'PX', ttl) then return next_fence(fence, ttl, clock()) end
  return redis.call('PTTL', owner)
end
