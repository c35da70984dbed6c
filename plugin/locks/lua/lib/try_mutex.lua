-- The uncontended grant of a mutex, shared by mutex_try.lua and mutex_batch.lua (needs next_fence.lua before it):
-- takes a free lock and its next fencing token (a string); otherwise ms until the holder's lease ends (-1: unknown).
local function try_mutex(owner, fence, token, ttl)
  if redis.call('SET', owner, token, 'NX', 'PX', ttl) then return next_fence(fence, ttl) end
  return redis.call('PTTL', owner)
end
