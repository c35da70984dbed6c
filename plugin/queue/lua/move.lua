-- The worker's one round trip: records the outcome of finished jobs (completed, retry later, dead-lettered),
-- trims finished jobs by age and count, gives jobs whose lease ran out back to the queue (or dead-letters them
-- after too many stalls), promotes due delayed jobs, and leases up to N waiting jobs to the caller.
-- KEYS[1] waiting list
-- KEYS[2] prioritised set
-- KEYS[3] delayed set (score: due time)
-- KEYS[4] active set (score: lease deadline)
-- KEYS[5] completed set (score: finish time)
-- KEYS[6] dead-letter set (score: time of death)
-- KEYS[7] paused flag
-- KEYS[8] delivery counter: each lease's token comes from it, so a token names one delivery of one job for good
--         (a custom id added again after its job was deleted does not meet the tokens of its earlier life)
-- KEYS[9] this worker's fetch record: its latest fetch's number, then per job taken id and delivery token, kept for
--         two leases. A key like the others (same hash tag), so Cluster routes and checks it with them before the
--         script starts (ASK, TRYAGAIN). A key the script only builds itself is checked when the script touches it:
--         during a slot migration, if it has moved already, Redis 7 stops the script there with an error ("Script
--         attempted to access a non local key"), keeping the writes made before it
-- ARGV[1] job hash key prefix (same hash tag as the keys)
-- ARGV[2] jobs to take
-- ARGV[3] lease in ms
-- ARGV[4] keep completed jobs this many ms (0: no age limit)
-- ARGV[5] keep at most this many completed jobs (-1: no count limit)
-- ARGV[6] keep dead jobs this many ms (0: no age limit)
-- ARGV[7] keep at most this many dead jobs (-1: no count limit)
-- ARGV[8] stalls allowed before a job is dead-lettered
-- ARGV[9] this call's fetch number: the jobs taken replace the record ('' : no record). A call that finds its own
--         number already recorded is a replay (the client re-sent it after a reconnect): it answers with the jobs
--         the first run leased, still under their leases, and leases nothing new
-- ARGV[10] R, the number of fetch numbers that follow whose replies never reached the worker
-- ARGV[11..10+R] those numbers: if the record is one of them, its jobs go back to the head of the queue, no stall counted
-- ARGV[11+R..] per finished job, 5 values: id, delivery token, outcome (c, r or d), result JSON or error, retry delay ms
-- Returns { taken {id, token, attempt, data, added at, attempts, backoff, ...}, stalled ids, dead-by-stall ids, lost, ms to next due (-1: none), paused, released fetch numbers, released jobs, repeated finishes }
-- ioredis-mock's Lua (fengari, 5.3) only converts tables built by a constructor; real Redis runs Lua 5.1.
local function reply(t)
  if _VERSION == 'Lua 5.1' then return t end
  return { table.unpack(t) }
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000)
local jk = ARGV[1]
local lost = 0
-- Finishes already recorded under the same delivery (sent again because the reply to the first send was lost).
local repeated = 0

local function push(id, key, front)
  local ps = redis.call('HGET', key, 'ps')
  if ps and ps ~= '' then
    redis.call('ZADD', KEYS[2], ps, id)
  elseif front then
    redis.call('RPUSH', KEYS[1], id)
  else
    redis.call('LPUSH', KEYS[1], id)
  end
end

local fk = KEYS[9]

-- A fetch whose reply was lost (a timeout, a reset): the worker never saw its jobs, so they have not run and their
-- leases say nothing about the worker. They go back now rather than stall when the lease runs out.
local releasedFetches, releasedJobs = {}, 0
local firstFinish = 11 + tonumber(ARGV[10])
if firstFinish > 11 then
  local rec = redis.call('GET', fk)
  if rec then
    local words = {}
    for w in string.gmatch(rec, '%S+') do words[#words + 1] = w end
    local named = false
    for i = 11, firstFinish - 1 do
      if ARGV[i] == words[1] then named = true end
    end
    if named then
      -- The number stays (with no jobs): a late re-send of that fetch then leases nothing (see below).
      redis.call('SET', fk, words[1], 'PX', 2 * tonumber(ARGV[3]))
      releasedFetches[1] = words[1]
      -- Backwards, each to the head: the fetch's first job ends up first in line again.
      for j = #words - 1, 2, -2 do
        local id = words[j]
        local key = jk .. id
        -- Still the lost lease's delivery (tokens are unique to one delivery of one job: KEYS[8]). Compared as
        -- numbers: ioredis-mock's Lua writes them as '1.0'.
        local cur = redis.call('HMGET', key, 'dl', 's', 'st')
        if tonumber(cur[1]) == tonumber(words[j + 1]) then
          if redis.call('ZREM', KEYS[4], id) == 1 then
            redis.call('HINCRBY', key, 'm', -1)
            redis.call('HSET', key, 'st', 'waiting')
            push(id, key, true)
            releasedJobs = releasedJobs + 1
          elseif (tonumber(cur[2]) or 0) > 0 then
            -- The lease ran out first and counted a stall: the job went back (undo the count) or, one stall too
            -- many, to the dead-letter set (undo that too).
            if cur[3] == 'waiting' then
              redis.call('HINCRBY', key, 's', -1)
              releasedJobs = releasedJobs + 1
            elseif cur[3] == 'dead' and redis.call('ZREM', KEYS[6], id) == 1 then
              redis.call('HINCRBY', key, 's', -1)
              redis.call('HSET', key, 'st', 'waiting')
              redis.call('HDEL', key, 'e', 'f')
              push(id, key, true)
              releasedJobs = releasedJobs + 1
            end
          end
        end
      end
    end
  end
end

local completedCount = tonumber(ARGV[5])
for i = firstFinish, #ARGV, 5 do
  local id = ARGV[i]
  local key = jk .. id
  local token = ARGV[i + 1]
  -- Only the holder of the current lease may finish a job: a worker whose lease ran out is too late. (Compared as
  -- numbers: ioredis-mock's Lua may write the token as '1.0'.)
  if tonumber(redis.call('HGET', key, 'dl')) == tonumber(token) and redis.call('ZREM', KEYS[4], id) == 1 then
    local outcome = ARGV[i + 2]
    local payload = ARGV[i + 3]
    if outcome == 'c' then
      if completedCount == 0 then
        redis.call('DEL', key)
      else
        redis.call('HSET', key, 'st', 'completed', 'f', now, 'r', payload, 'fd', token)
        redis.call('ZADD', KEYS[5], now, id)
      end
    elseif outcome == 'r' then
      local delay = tonumber(ARGV[i + 4])
      redis.call('HSET', key, 'e', payload, 'f', now, 'fd', token)
      if delay > 0 then
        redis.call('HSET', key, 'st', 'failed', 'rt', now + delay)
        redis.call('ZADD', KEYS[3], now + delay, id)
      else
        redis.call('HSET', key, 'st', 'waiting')
        push(id, key, false)
      end
    else
      redis.call('HSET', key, 'st', 'dead', 'e', payload, 'f', now, 'fd', token)
      redis.call('ZADD', KEYS[6], now, id)
    end
  elseif tostring(redis.call('HGET', key, 'fd')) == token then
    -- Already recorded: the same outcome sent again because the reply to its first send was lost.
    repeated = repeated + 1
  else
    lost = lost + 1
  end
end

local function trim(set, age, count)
  if count >= 0 then
    local excess = redis.call('ZCARD', set) - count
    if excess > 0 then
      if excess > 1000 then excess = 1000 end
      local ids = redis.call('ZRANGE', set, 0, excess - 1)
      for _, id in ipairs(ids) do redis.call('DEL', jk .. id) end
      redis.call('ZREMRANGEBYRANK', set, 0, excess - 1)
    end
  end
  if age > 0 then
    local ids = redis.call('ZRANGEBYSCORE', set, '-inf', now - age, 'LIMIT', 0, 1000)
    if #ids > 0 then
      for _, id in ipairs(ids) do redis.call('DEL', jk .. id) end
      redis.call('ZREMRANGEBYRANK', set, 0, #ids - 1)
    end
  end
end
if completedCount > 0 or tonumber(ARGV[4]) > 0 then trim(KEYS[5], tonumber(ARGV[4]), completedCount) end
trim(KEYS[6], tonumber(ARGV[6]), tonumber(ARGV[7]))

-- Leases that ran out: the worker died or hung. The attempt does not count; the stall does.
-- Redis keeps the writes a script made before an error (on Cluster, touching a job hash whose slot is being migrated
-- raises one), so the first loop only reads, and the second takes each job out of the active set only as it puts
-- that job back: an error exposes at most one job, never the whole batch.
local stalled, buried = {}, {}
local maxStalls = tonumber(ARGV[8])
local expired = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 100)) do
  local token = redis.call('HGET', jk .. id, 'dl')
  -- Tokens compared as numbers: ioredis-mock's Lua writes them as '1.0'. A job deleted meanwhile only leaves the set.
  local live = (token and true) or redis.call('EXISTS', jk .. id) == 1
  expired[#expired + 1] = { id, tonumber(token) or 0, live }
end
-- In the order they were leased (tokens come from KEYS[8] in order), not the set's: one fetch's jobs share a
-- deadline and then sort by id as text ('10' before '9'). Only within this pass: it takes the 100 earliest
-- deadlines (ties by id as text), and a later pass puts its jobs ahead of these.
table.sort(expired, function(x, y) return x[2] < y[2] or (x[2] == y[2] and x[1] < y[1]) end)
-- Backwards, each to the head: the first leased ends up first in line again, ahead of the jobs that were waiting.
for j = #expired, 1, -1 do
  local id, live = expired[j][1], expired[j][3]
  local key = jk .. id
  if live then
    -- The counts first: an error before the ZREM leaves the job leased, to be counted again by the next pass.
    local stalls = redis.call('HINCRBY', key, 's', 1)
    redis.call('HINCRBY', key, 'm', -1)
    redis.call('ZREM', KEYS[4], id)
    if stalls > maxStalls then
      redis.call('HSET', key, 'st', 'dead', 'e', 'stalled ' .. math.floor(stalls) .. ' times (its worker died or hung)', 'f', now)
      redis.call('ZADD', KEYS[6], now, id)
      buried[#buried + 1] = id
    else
      redis.call('HSET', key, 'st', 'waiting')
      push(id, key, true)
      stalled[#stalled + 1] = id
    end
  else
    redis.call('ZREM', KEYS[4], id)
  end
end
-- Reported in lease order too.
local function reversed(t)
  local r = {}
  for j = #t, 1, -1 do r[#r + 1] = t[j] end
  return r
end
stalled, buried = reversed(stalled), reversed(buried)

local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
if #due > 0 then
  for _, id in ipairs(due) do
    local key = jk .. id
    redis.call('HSET', key, 'st', 'waiting')
    push(id, key, false)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, #due - 1)
end

local taken = {}
local record = { ARGV[9] }
local paused = redis.call('EXISTS', KEYS[7])
local want = tonumber(ARGV[2])
local replayed = false
if want > 0 and ARGV[9] ~= '' then
  local rec = redis.call('GET', fk)
  local recorded = rec and tonumber(string.match(rec, '^%S+'))
  -- A worker numbers its fetches upwards: a number below the record's is a late re-send of an older fetch, whose
  -- jobs were recorded, and released or replaced, already: it leases nothing, and the record stays.
  if recorded and tonumber(ARGV[9]) < recorded then replayed = true end
  if recorded and tonumber(ARGV[9]) == recorded then
    -- A replay: the same jobs again, with fresh leases, those still leased under the recorded deliveries.
    replayed = true
    local deadline = now + tonumber(ARGV[3])
    local words = {}
    for w in string.gmatch(rec, '%S+') do words[#words + 1] = w end
    for j = 2, #words - 1, 2 do
      local id = words[j]
      local key = jk .. id
      local v = redis.call('HMGET', key, 'd', 't', 'a', 'b', 'dl', 'm')
      if v[1] and tonumber(v[5]) == tonumber(words[j + 1]) and redis.call('ZSCORE', KEYS[4], id) then
        redis.call('ZADD', KEYS[4], deadline, id)
        taken[#taken + 1] = id
        taken[#taken + 1] = v[5]
        taken[#taken + 1] = v[6]
        taken[#taken + 1] = v[1]
        taken[#taken + 1] = v[2]
        taken[#taken + 1] = v[3] or '1'
        taken[#taken + 1] = v[4] or ''
      end
    end
  end
end
if not replayed and paused == 0 and want > 0 then
  local deadline = now + tonumber(ARGV[3])
  local n = 0
  while n < want do
    local id = redis.call('RPOP', KEYS[1])
    if not id then id = redis.call('ZPOPMIN', KEYS[2])[1] end
    if not id then break end
    local key = jk .. id
    local v = redis.call('HMGET', key, 'd', 't', 'a', 'b')
    if v[1] then
      local token = redis.call('INCR', KEYS[8])
      local attempt = redis.call('HINCRBY', key, 'm', 1)
      redis.call('HSET', key, 'st', 'active', 'pt', now, 'dl', token)
      redis.call('ZADD', KEYS[4], deadline, id)
      taken[#taken + 1] = id
      taken[#taken + 1] = token
      taken[#taken + 1] = attempt
      taken[#taken + 1] = v[1]
      taken[#taken + 1] = v[2]
      taken[#taken + 1] = v[3] or '1'
      taken[#taken + 1] = v[4] or ''
      record[#record + 1] = id
      record[#record + 1] = token
      n = n + 1
    end
  end
  if #record > 1 and ARGV[9] ~= '' then
    -- Kept for two leases: a release that comes after the lease ran out still undoes the stall it caused.
    redis.call('SET', fk, table.concat(record, ' '), 'PX', 2 * tonumber(ARGV[3]))
  end
end

local nextIn = -1
if #taken == 0 then
  for _, set in ipairs({ KEYS[3], KEYS[4] }) do
    local head = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
    if head[2] then
      local wait = tonumber(head[2]) - now
      if wait < 0 then wait = 0 end
      if nextIn < 0 or wait < nextIn then nextIn = wait end
    end
  end
end
return { reply(taken), reply(stalled), reply(buried), lost, nextIn, paused, reply(releasedFetches), releasedJobs, repeated }
