-- The uncontended fast path of a mutex: takes a free lock and its next fencing token with no waiter bookkeeping.
-- Used for a caller's first attempt when FIFO fairness is off; waiting callers use mutex_acquire.lua.
-- KEYS[1]  owner: the holder's token, expiring with the lease
-- KEYS[2]  last fencing token (expires an hour after the lease)
-- ARGV[1]  token of the caller
-- ARGV[2]  lease in ms
-- Returns  the fencing token (a string) when granted; otherwise ms until the holder's lease ends (-1: unknown)
--!include next_fence.lua
--!include try_mutex.lua
return try_mutex(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
