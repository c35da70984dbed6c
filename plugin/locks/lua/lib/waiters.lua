-- The waiter queue of one lock: a sorted set of waiter ids by arrival (FIFO order) and one by registration expiry
-- (a waiter that stopped renewing, e.g. a crashed process, is dropped after its lease). A failed attempt of a
-- waiting caller registers it in the same script as the failed check, so a release right after cannot miss it.

-- Drops registrations whose lease has run out (at most 100 a call, to bound the script's time).
local function drop_lapsed_waiters(queue, expiries, now)
  if redis.call('EXISTS', expiries) == 0 then return end
  local lapsed = redis.call('ZRANGEBYSCORE', expiries, '-inf', now, 'LIMIT', 0, 100)
  if #lapsed > 0 then
    redis.call('ZREM', expiries, unpack(lapsed))
    redis.call('ZREM', queue, unpack(lapsed))
  end
end

-- Under FIFO fairness, whether a waiter other than `waiter` arrived first (and so is owed the lock).
local function someone_else_first(queue, waiter)
  local head = redis.call('ZRANGE', queue, 0, 0)
  return head[1] ~= nil and head[1] ~= waiter
end

-- Registers `waiter` (keeping its first arrival time) or renews its registration for `lease` ms.
local function register_waiter(queue, expiries, waiter, now, lease)
  redis.call('ZADD', queue, 'NX', now, waiter)
  redis.call('ZADD', expiries, now + lease, waiter)
  redis.call('PEXPIRE', queue, lease)
  redis.call('PEXPIRE', expiries, lease)
end

-- Removes `waiter` (granted, or gave up); returns 1 when it was registered.
local function unregister_waiter(queue, expiries, waiter)
  redis.call('ZREM', expiries, waiter)
  return redis.call('ZREM', queue, waiter)
end
