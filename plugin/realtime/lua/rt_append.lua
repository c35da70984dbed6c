-- Appends one event to a channel's capped history under the next sequence id, and publishes it to the channel's
-- subscribers, in one atomic step so that history order and delivery order agree.
-- KEYS[1] the channel's sequence counter (string)
-- KEYS[2] the channel's history (list, oldest first, each element "<id> <payload>")
-- ARGV[1] payload (JSON text)
-- ARGV[2] most events the history keeps
-- ARGV[3] time to live of the history in ms, renewed by each event
-- ARGV[4] pub/sub channel to publish to ('' for none: stores without subscriptions poll the history)
-- Returns the event's id
local id = redis.call('INCR', KEYS[1])
-- %d: ioredis-mock's Lua would print the counter as a float ("4.0").
local entry = string.format('%d', id) .. ' ' .. ARGV[1]
redis.call('RPUSH', KEYS[2], entry)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then
  redis.call('PUBLISH', ARGV[4], entry)
end
return id
