-- Decides one request against every policy of a limiter in one atomic step on the server's clock: reads the
-- block key and each policy's state, decides, and writes the new states only when every policy admits the request
-- (so a denied request does not use up the other policies), or always in force mode (reconciling counts taken
-- while the store was away). Each algorithm mirrors plugin/rate-limit/algorithms.ts line by line.
-- KEYS[1]  the block key: present while the client serves a block duration after a denial
-- KEYS[2]  the first policy's state (one string of packed doubles, written with SET ... PX);
--          KEYS[2..n+1] one per policy, all under one {id} hash tag
-- ARGV[1]  cost of this request
-- ARGV[2]  mode: 0 consume, 1 peek (read only), 2 force (add the cost whatever the outcome)
-- ARGV[3]  block duration in ms applied when a policy denies (0: none); only read by the shipped script itself,
--          each limiter runs a copy with ARGV[3..] baked in (see the `local C` line below)
-- ARGV[4..] four per policy: algorithm (1 fixed window, 2 sliding window, 3 token bucket, 4 GCRA), limit,
--          window in ms, burst (baked in likewise)
-- Returns  { block ms left (0: not blocked), index of the policy that caused the block (0-based),
--            then four per policy: allowed (1/0), remaining, reset in ms, retry-after in ms }
-- Time is kept in floating point on purpose: ioredis-mock's Lua has 32-bit integers. State is one string per
-- policy rather than a hash: a GET and a SET ... PX cost two commands where HMGET, HSET and PEXPIRE cost three.
-- The string holds the numbers as packed doubles (Redis's struct library): exact, and about 4 µs of server CPU
-- cheaper per policy than formatting and parsing them as text. ioredis-mock has no struct library; there the same
-- numbers are written as %.17g text (one server never sees both forms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + tonumber(t[2]) / 1000.0
local cost = tonumber(ARGV[1])
local mode = tonumber(ARGV[2])
-- The limiter's constants: block ms, then four per policy. plugin/rate-limit/limiter.ts replaces the next line
-- with a table literal of its own values (a script per limiter), so a call sends two arguments and parses none of
-- them; this shipped form reads them from ARGV.
local C = nil -- constants
if C == nil then
  C = {}
  for i = 3, #ARGV do C[i - 2] = tonumber(ARGV[i]) end
end
local blockMs = C[1]
local n = #KEYS - 1
local unpack = unpack or table.unpack

-- The block key is only read by limiters that set one (a block duration): one command less on the hot path.
if mode ~= 2 and blockMs > 0 then
  local left = redis.call('PTTL', KEYS[1])
  if left > 0 then
    return { left, tonumber(redis.call('GET', KEYS[1])) or 0 }
  end
end

-- Per policy, eight slots of one flat table V (one allocation per call, not one per policy or per field): allowed,
-- remaining and reset both without (R0, E0) and with (R1, E1) this request's cost, retry-after, the state to write
-- and its time to live. Which remaining/reset pair is reported depends on whether the request is finally consumed,
-- known only after every policy spoke.
-- Sized up front for the common one-policy case: a table grown slot by slot is reallocated at 1, 2, 4 and 8.
local V
if n == 1 then V = { false, 0, 0, 0, 0, 0, 0, 0 } else V = {} end
local floor, ceil = math.floor, math.ceil
local pack, unpackState = nil, nil
if struct then
  pack, unpackState = struct.pack, struct.unpack
else
  local TEXT = { d = '%.17g', dd = '%.17g %.17g', ddddd = '%.17g %.17g %.17g %.17g %.17g' }
  local PATTERN = { d = '^(%S+)$', dd = '^(%S+) (%S+)$', ddddd = '^(%S+) (%S+) (%S+) (%S+) (%S+)$' }
  pack = function(f, ...) return string.format(TEXT[f], ...) end
  unpackState = function(f, s)
    local a, b, c, d, e = string.match(s, PATTERN[f])
    return tonumber(a), tonumber(b), tonumber(c), tonumber(d), tonumber(e)
  end
end
local all = true
local worst = -1
local worstRetry = -1

for i = 1, n do
  local b = (i - 1) * 8
  local key = KEYS[i + 1]
  local base = 1 + (i - 1) * 4
  local algo, limit, w, burst = C[base + 1], C[base + 2], C[base + 3], C[base + 4]
  local allowed, r0, r1, e0, e1, retry
  if algo == 1 then
    local ws = now - (now % w)
    local used = 0
    local st = redis.call('GET', key)
    if st then
      local s, c = unpackState('dd', st)
      if s == ws then used = c or 0 end
    end
    allowed = used + cost <= limit
    e0 = ws + w - now
    e1 = e0
    r0 = limit - used
    r1 = r0 - cost
    V[b + 7], V[b + 8] = pack('dd', ws, used + cost), e0
    if allowed then retry = 0 elseif cost > limit then retry = e0 + w else retry = e0 end
  elseif algo == 2 then
    -- Two windows' counts, plus when counting began in each (f, q). The previous window's count is taken as
    -- spread evenly from its first request to its end (not over the whole window), so a client that starts with
    -- a burst late in a window gets no second burst early in the next one.
    -- The windows' grid starts at the client's first request and is kept while its state lives: with a grid fixed
    -- to the clock, how much the estimate overshoots depended on where in a window the traffic began (up to +5 %
    -- for a steady client starting late in a window).
    local ws = now
    local cur, prev, first, pfirst = 0, 0, nil, ws - w
    local st = redis.call('GET', key)
    if st then
      local s, c, p, f, q = unpackState('ddddd', st)
      if now >= s then ws = s + math.floor((now - s) / w) * w else ws = s end
      pfirst = ws - w
      if s == ws then
        cur = c or 0
        prev = p or 0
        first = f
        pfirst = q or pfirst
      elseif s == ws - w then
        prev = c or 0
        pfirst = f or pfirst
      end
    end
    local span = ws - pfirst
    local from = now - w
    if from < pfirst then from = pfirst end
    local weight = 0
    if span > 0 then weight = (ws - from) / span elseif now - w < pfirst then weight = 1 end
    local est = prev * weight + cur
    allowed = est + cost <= limit
    e0 = w - (now - ws)
    e1 = e0
    r0 = limit - est
    r1 = r0 - cost
    V[b + 7] = pack('ddddd', ws, cur + cost, prev, first or now, pfirst)
    V[b + 8] = e0 + w
    if allowed then
      retry = 0
    elseif cost > limit then
      retry = e0 + w
    elseif cur + cost <= limit then
      retry = ws + w - ((limit - cur - cost) / prev) * span - now
    else
      local nws = ws + w
      retry = nws + w - ((limit - cost) / cur) * (nws - (first or ws)) - now
    end
  elseif algo == 3 then
    local rate = limit / w
    local tokens, last
    local st = redis.call('GET', key)
    if st then
      tokens, last = unpackState('dd', st)
    end
    if tokens == nil or last == nil then
      tokens = burst
    else
      -- A clock that stepped back (failover to a replica whose clock lags) must not take tokens away.
      local elapsed = now - last
      if elapsed < 0 then elapsed = 0 end
      tokens = tokens + elapsed * rate
      if tokens > burst then tokens = burst end
    end
    allowed = tokens >= cost
    r0 = tokens
    r1 = tokens - cost
    e0 = (burst - r0) / rate
    e1 = (burst - r1) / rate
    V[b + 7], V[b + 8] = pack('dd', r1, now), e1
    if allowed then retry = 0 elseif cost > burst then retry = e0 + w else retry = (cost - tokens) / rate end
  else
    local interval = w / limit
    local tau = burst * interval
    local st = redis.call('GET', key)
    local tat = nil
    if st then tat = unpackState('d', st) end
    if tat == nil or tat < now then tat = now end
    local newTat = tat + cost * interval
    allowed = newTat - now <= tau + 0.0001
    e0 = tat - now
    e1 = newTat - now
    r0 = (tau - e0) / interval + 0.0001
    r1 = (tau - e1) / interval + 0.0001
    V[b + 7], V[b + 8] = pack('d', newTat), e1
    if allowed then retry = 0 elseif cost > burst then retry = e0 + w else retry = newTat - tau - now end
  end
  if not allowed then
    all = false
    if retry > worstRetry then
      worstRetry = retry
      worst = i - 1
    end
  end
  V[b + 1], V[b + 2], V[b + 3], V[b + 4], V[b + 5], V[b + 6] = allowed, r0, r1, e0, e1, retry
end

local consumed = mode == 2 or (mode == 0 and all)
local out
if n == 1 then out = { 0, 0, 0, 0, 0, 0 } else out = { 0, 0 } end
for i = 1, n do
  local b = (i - 1) * 8
  local remaining, reset = V[b + 2], V[b + 4]
  if consumed then remaining, reset = V[b + 3], V[b + 5] end
  if remaining < 0 then remaining = 0 end
  local o = 2 + (i - 1) * 4
  out[o + 1] = V[b + 1] and 1 or 0
  out[o + 2] = floor(remaining)
  out[o + 3] = ceil(reset)
  out[o + 4] = ceil(V[b + 6])
end

if consumed then
  for i = 1, n do
    local ttl = ceil(V[i * 8])
    if ttl < 1 then ttl = 1 end
    redis.call('SET', KEYS[i + 1], V[i * 8 - 1], 'PX', ttl)
  end
elseif mode == 0 and blockMs > 0 then
  redis.call('SET', KEYS[1], worst, 'PX', blockMs)
  out[1] = blockMs
  out[2] = worst
end
-- Re-packed through a table constructor for ioredis-mock, whose Lua bridge only converts tables built that way
-- (it is also the engine without a struct library); real servers take the table as it is.
if struct then return out end
return { unpack(out) }
