-- Decides one request against every policy of a limiter in one atomic step on the server's clock. A client's whole
-- state for one limiter lives in one key (its block and every policy's state), read with one GET and written with
-- one SET ... PX: two commands plus TIME however many policies, and one key, so one Cluster slot. New states are
-- written only when every policy admits the request (a denied request does not use up the other policies), or
-- always in force mode (reconciling counts taken while the store was away). Each algorithm mirrors
-- plugin/rate-limit/algorithms.ts line by line.
-- KEYS[1]  the client's state for this limiter: one string of packed doubles, in order: block-until (server ms,
--          0 when never blocked), index of the policy that caused the block (0-based), then per policy its own
--          expiry (server ms) followed by its fields: fixed window (window start, count); sliding window (window
--          start, count, previous count, first request in the window, first request in the previous window);
--          token bucket (tokens, last refill); GCRA (theoretical arrival time)
-- ARGV[1]  cost of this request
-- ARGV[2]  mode: 0 consume, 1 peek (read only), 2 force (add the cost whatever the outcome)
-- ARGV[3]  block duration in ms applied when a policy denies (0: none); only read by the shipped script itself,
--          each limiter runs a copy with ARGV[3..] baked in (see the `local C, F` line below)
-- ARGV[4..] four per policy: algorithm (1 fixed window, 2 sliding window, 3 token bucket, 4 GCRA), limit,
--          window in ms, burst (baked in likewise)
-- Returns  { block ms left (0: not blocked), index of the policy that caused the block (0-based),
--            then four per policy: allowed (1/0), remaining, reset in ms, retry-after in ms }
-- Each policy keeps its expiry inside the string, set as its own key's time to live used to be, so a policy's
-- state lapses exactly when it did with a key per policy (a 1 s burst policy beside a 1 h one starts afresh after
-- its own idle time); the key itself lives as long as its longest-lived part (PX on every write).
-- Time is kept in floating point on purpose: ioredis-mock's Lua has 32-bit integers. The numbers are packed as
-- doubles with Redis's struct library: exact, and cheaper than formatting and parsing text. ioredis-mock has no
-- struct library; there the same numbers are written as %.17g text (one server never sees both forms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + tonumber(t[2]) / 1000.0
local cost = tonumber(ARGV[1])
local mode = tonumber(ARGV[2])
-- The limiter's constants: C holds the block ms, then four per policy; F is the state's struct format (one 'd' per
-- number). plugin/rate-limit/limiter.ts replaces the next line with literals of its own (a script per limiter), so
-- a call sends two arguments and parses none of them; this shipped form derives them from ARGV.
local C, F = nil, nil -- constants
if C == nil then
  C = {}
  for i = 3, #ARGV do C[i - 2] = tonumber(ARGV[i]) end
end
-- Numbers per algorithm after the policy's expiry.
local FIELDS = { 2, 5, 2, 1 }
local n = (#C - 1) / 4
if F == nil then
  F = 'dd'
  for i = 1, n do F = F .. string.rep('d', 1 + FIELDS[C[(i - 1) * 4 + 2]]) end
end
local blockMs = C[1]
local count = #F
local unpack = unpack or table.unpack
local floor, ceil = math.floor, math.ceil

-- S: the stored numbers, or nil when there are none (or they are not of this layout: read as no state).
local S = nil
local raw = redis.call('GET', KEYS[1])
if raw then
  if struct then
    if #raw == count * 8 then S = { struct.unpack(F, raw) } end
  else
    S = {}
    for v in string.gmatch(raw, '%S+') do S[#S + 1] = tonumber(v) end
    if #S ~= count then S = nil end
  end
end

-- The block is only read by limiters that set one (a block duration).
if mode ~= 2 and blockMs > 0 and S and S[1] > now then
  return { ceil(S[1] - now), S[2] }
end

-- Per policy, six slots of one flat table V (one allocation per call, not one per policy): allowed, remaining and
-- reset both without (R0, E0) and with (R1, E1) this request's cost, and retry-after. Which remaining/reset pair is
-- reported depends on whether the request is finally consumed, known only after every policy spoke. W is the
-- state to write if it is: the header, then per policy its new expiry and fields, appended in order.
local V
if n == 1 then V = { false, 0, 0, 0, 0, 0 } else V = {} end
local W = { 0, 0 }
local all = true
local worst = -1
local worstRetry = -1
local longest = 1
local o = 3

for i = 1, n do
  local b = (i - 1) * 6
  local base = 1 + (i - 1) * 4
  local algo, limit, w, burst = C[base + 1], C[base + 2], C[base + 3], C[base + 4]
  -- This policy's stored fields are S[o + 1 ..], valid while its own expiry S[o] is ahead.
  local live = S ~= nil and S[o] > now
  local allowed, r0, r1, e0, e1, retry, ttl
  if algo == 1 then
    local ws = now - (now % w)
    local used = 0
    if live and S[o + 1] == ws then used = S[o + 2] end
    allowed = used + cost <= limit
    e0 = ws + w - now
    e1 = e0
    r0 = limit - used
    r1 = r0 - cost
    W[o + 1], W[o + 2] = ws, used + cost
    ttl = e0
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
    if live then
      local s, c, p, f, q = S[o + 1], S[o + 2], S[o + 3], S[o + 4], S[o + 5]
      if now >= s then ws = s + floor((now - s) / w) * w else ws = s end
      pfirst = ws - w
      if s == ws then
        cur = c
        prev = p
        first = f
        pfirst = q
      elseif s == ws - w then
        prev = c
        pfirst = f
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
    W[o + 1], W[o + 2], W[o + 3], W[o + 4], W[o + 5] = ws, cur + cost, prev, first or now, pfirst
    ttl = e0 + w
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
    local tokens = burst
    if live then
      -- A clock that stepped back (failover to a replica whose clock lags) must not take tokens away.
      local elapsed = now - S[o + 2]
      if elapsed < 0 then elapsed = 0 end
      tokens = S[o + 1] + elapsed * rate
      if tokens > burst then tokens = burst end
    end
    allowed = tokens >= cost
    r0 = tokens
    r1 = tokens - cost
    e0 = (burst - r0) / rate
    e1 = (burst - r1) / rate
    W[o + 1], W[o + 2] = r1, now
    ttl = e1
    if allowed then retry = 0 elseif cost > burst then retry = e0 + w else retry = (cost - tokens) / rate end
  else
    local interval = w / limit
    local tau = burst * interval
    local tat = now
    if live and S[o + 1] >= now then tat = S[o + 1] end
    local newTat = tat + cost * interval
    allowed = newTat - now <= tau + 0.0001
    e0 = tat - now
    e1 = newTat - now
    r0 = (tau - e0) / interval + 0.0001
    r1 = (tau - e1) / interval + 0.0001
    W[o + 1] = newTat
    ttl = e1
    if allowed then retry = 0 elseif cost > burst then retry = e0 + w else retry = newTat - tau - now end
  end
  -- The policy's expiry, as its key's time to live was: whole milliseconds, at least one.
  ttl = ceil(ttl)
  if ttl < 1 then ttl = 1 end
  if ttl > longest then longest = ttl end
  W[o] = now + ttl
  if not allowed then
    all = false
    if retry > worstRetry then
      worstRetry = retry
      worst = i - 1
    end
  end
  V[b + 1], V[b + 2], V[b + 3], V[b + 4], V[b + 5], V[b + 6] = allowed, r0, r1, e0, e1, retry
  o = o + 1 + FIELDS[algo]
end

local consumed = mode == 2 or (mode == 0 and all)
local out
if n == 1 then out = { 0, 0, 0, 0, 0, 0 } else out = { 0, 0 } end
for i = 1, n do
  local b = (i - 1) * 6
  local remaining, reset = V[b + 2], V[b + 4]
  if consumed then remaining, reset = V[b + 3], V[b + 5] end
  if remaining < 0 then remaining = 0 end
  local q = 2 + (i - 1) * 4
  out[q + 1] = V[b + 1] and 1 or 0
  out[q + 2] = floor(remaining)
  out[q + 3] = ceil(reset)
  out[q + 4] = ceil(V[b + 6])
end

local function encode(T)
  if struct then return struct.pack(F, unpack(T, 1, count)) end
  local text = {}
  for k = 1, count do text[k] = string.format('%.17g', T[k]) end
  return table.concat(text, ' ')
end

if consumed then
  -- A block still running (force mode reconciles during one) is kept, and the key outlives it.
  if S and S[1] > now then
    W[1], W[2] = S[1], S[2]
    local left = ceil(S[1] - now)
    if left > longest then longest = left end
  end
  redis.call('SET', KEYS[1], encode(W), 'PX', longest)
elseif mode == 0 and blockMs > 0 then
  -- The policies' states stay as they were (none of them consumed); only the block is added.
  local B = S
  if B == nil then
    B = {}
    for k = 1, count do B[k] = 0 end
  end
  B[1], B[2] = now + blockMs, worst
  longest = blockMs
  o = 3
  for i = 1, n do
    local left = ceil(B[o] - now)
    if left > longest then longest = left end
    o = o + 1 + FIELDS[C[(i - 1) * 4 + 2]]
  end
  redis.call('SET', KEYS[1], encode(B), 'PX', longest)
  out[1] = blockMs
  out[2] = worst
end
-- Re-packed through a table constructor for ioredis-mock, whose Lua bridge only converts tables built that way
-- (it is also the engine without a struct library); real servers take the table as it is.
if struct then return out end
return { unpack(out) }
