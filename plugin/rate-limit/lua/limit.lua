-- Decides one request against every policy of a limiter in one atomic step on the server's clock. A client's whole
-- state for one limiter lives in one key (its block and every policy's state), read with one GET and written with
-- one SET ... PX: two commands plus TIME however many policies, and one key, so one Cluster slot. New states are
-- written only when every policy admits the request (a denied request does not use up the other policies), or
-- always in force mode (reconciling counts taken while the store was away). Each algorithm mirrors
-- plugin/rate-limit/algorithms.ts line by line.
-- Several decisions may share one call (the limiter sends the decisions started in one turn of the event loop
-- together): decision j has KEYS[j], ARGV[2j - 1] and ARGV[2j], and its reply takes the j-th run of 2 + 4 per
-- policy numbers in the flat reply. Decisions run in order, so two for the same key see each other's writes; each
-- is exactly what a call of its own would have done at the same server time (TIME is read once per call).
-- KEYS[1]  (KEYS[j] for decision j) the client's state for this limiter: one string of packed doubles, in order:
--          block-until (server ms, 0 when never blocked), index of the policy that caused the block (0-based), then
--          per policy its own expiry (server ms) followed by its fields: fixed window (window start, count); sliding
--          window (window start, count, previous count, first request in the window, first request in the previous
--          window); token bucket (tokens, last refill); GCRA (theoretical arrival time)
-- ARGV[2j - 1]  cost of decision j
-- ARGV[2j]      its mode: 0 consume, 1 peek (read only), 2 force (add the cost whatever the outcome)
-- Then, only read by the shipped script itself (each limiter runs a copy with them baked in: see the `local C, F`
-- line below): the block duration in ms applied when a policy denies (0: none), then four per policy: algorithm
-- (1 fixed window, 2 sliding window, 3 token bucket, 4 GCRA), limit, window in ms, burst.
-- Returns, per decision: block ms left (0: not blocked), index of the policy that caused the block (0-based),
--          then four per policy: allowed (1/0), remaining, reset in ms, retry-after in ms (zeros when blocked)
-- Each policy keeps its expiry inside the string, set as its own key's time to live used to be, so a policy's
-- state lapses exactly when it did with a key per policy (a 1 s burst policy beside a 1 h one starts afresh after
-- its own idle time); the key itself lives as long as its longest-lived part (PX on every write).
-- Time is kept in floating point on purpose: ioredis-mock's Lua has 32-bit integers. The numbers are packed as
-- doubles with Redis's struct library: exact, and cheaper than formatting and parsing text. ioredis-mock has no
-- struct library; there the same numbers are written as %.17g text (one server never sees both forms).
-- The stored numbers are read straight into locals, policy by policy (struct.unpack from a position), and the new
-- string is concatenated from packed parts: a table of the numbers, read or to write, cost ~4 us of server CPU
-- per call (allocation and garbage collection), more than the work it held.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + tonumber(t[2]) / 1000.0
local k = #KEYS
-- The limiter's constants: C holds the block ms, then four per policy; F is the state's struct format (one 'd' per
-- number); V and out are the per-policy scratch table and the reply (see below), built by constructors of their
-- final size, because a table grown slot by slot is reallocated at 1, 2, 4, 8, 16 and 32 slots.
-- plugin/rate-limit/limiter.ts replaces the next line with literals of its own (a script per limiter), so a call
-- sends two arguments and parses none of them; this shipped form derives them from ARGV.
local C, F, V, out = nil, nil, nil, nil -- constants
if C == nil then
  C = {}
  for i = 2 * k + 1, #ARGV do C[i - 2 * k] = tonumber(ARGV[i]) end
end
local n = (#C - 1) / 4
if V == nil then
  V, out = {}, {}
  for q = 1, 2 + 4 * n do out[q] = 0 end
end
local per = 2 + 4 * n
if F == nil then
  -- Numbers per algorithm after the policy's expiry: 2 (fixed window), 5 (sliding), 2 (token bucket), 1 (GCRA).
  local FIELDS = { 2, 5, 2, 1 }
  F = 'dd'
  for i = 1, n do F = F .. string.rep('d', 1 + FIELDS[C[(i - 1) * 4 + 2]]) end
end
local blockMs = C[1]
local count = #F
local floor, ceil = math.floor, math.ceil

-- pack(format, ...) and unpackAt(format, string, position) -> the numbers, then the next position. With struct the
-- position is a byte offset; in the text form it counts numbers, and each packed number ends with a space so that
-- packed parts concatenate.
local pack, unpackAt, headerEnd
-- Without struct: the current decision's stored numbers, parsed from its string by decide().
local T
if struct then
  pack, unpackAt, headerEnd = struct.pack, struct.unpack, 17
else
  local unpack = unpack or table.unpack
  headerEnd = 3
  pack = function(f, ...)
    local v, s = { ... }, ''
    for q = 1, #f do s = s .. string.format('%.17g ', v[q]) end
    return s
  end
  unpackAt = function(f, _, pos)
    local r = { unpack(T, pos, pos + #f - 1) }
    r[#f + 1] = pos + #f
    return unpack(r, 1, #f + 1)
  end
end

-- One decision: fills `out` (2 + 4 per policy numbers).
local function decide(key, cost, mode)
  out[1], out[2] = 0, 0
  local raw = redis.call('GET', key)
  local valid = false
  if struct then
    valid = raw and #raw == count * 8
  else
    T = {}
    if raw then
      for v in string.gmatch(raw, '%S+') do T[#T + 1] = tonumber(v) end
    end
    valid = raw and #T == count
  end

  -- The header (read as no state when the string is missing or not of this layout).
  local blockUntil, culprit = 0, 0
  local pos = headerEnd
  if valid then blockUntil, culprit = unpackAt('dd', raw, 1) end

  -- The block is only read by limiters that set one (a block duration).
  if mode ~= 2 and blockMs > 0 and blockUntil > now then
    out[1], out[2] = ceil(blockUntil - now), culprit
    for q = 3, per do out[q] = 0 end
    return
  end

  -- Per policy, seven slots of one flat table V (one allocation per call, not one per policy): allowed, remaining
  -- and reset both without (R0, E0) and with (R1, E1) this request's cost, retry-after, and the packed part to write
  -- (expiry, then fields). Which remaining/reset pair is reported depends on whether the request is finally
  -- consumed, known only after every policy spoke.
  local all = true
  local worst = -1
  local worstRetry = -1
  local longest = 1
  -- The latest expiry among the stored policies: how long the key must live if only a block is added.
  local storedUntil = 0

  for i = 1, n do
    local b = (i - 1) * 7
    local base = 1 + (i - 1) * 4
    local algo, limit, w, burst = C[base + 1], C[base + 2], C[base + 3], C[base + 4]
    -- Each policy's stored fields count only while its own expiry is ahead (`live`).
    local live, expiry = false, 0
    local allowed, r0, r1, e0, e1, retry, ttl, part
    if algo == 1 then
      local s, c = 0, 0
      if valid then expiry, s, c, pos = unpackAt('ddd', raw, pos) end
      live = expiry > now
      local ws = now - (now % w)
      local used = 0
      if live and s == ws then used = c end
      allowed = used + cost <= limit
      e0 = ws + w - now
      e1 = e0
      r0 = limit - used
      r1 = r0 - cost
      ttl = ceil(e0)
      if ttl < 1 then ttl = 1 end
      part = pack('ddd', now + ttl, ws, used + cost)
      if allowed then retry = 0 elseif cost > limit then retry = e0 + w else retry = e0 end
    elseif algo == 2 then
      -- Two windows' counts, plus when counting began in each (f, q). The previous window's count is taken as
      -- spread evenly from its first request to its end (not over the whole window), so a client that starts with
      -- a burst late in a window gets no second burst early in the next one.
      -- The windows' grid starts at the client's first request and is kept while its state lives: with a grid fixed
      -- to the clock, how much the estimate overshoots depended on where in a window the traffic began (up to +5 %
      -- for a steady client starting late in a window).
      local s, c, p, f, q = 0, 0, 0, 0, 0
      if valid then expiry, s, c, p, f, q, pos = unpackAt('dddddd', raw, pos) end
      live = expiry > now
      local ws = now
      local cur, prev, first, pfirst = 0, 0, nil, ws - w
      if live then
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
      ttl = ceil(e0 + w)
      if ttl < 1 then ttl = 1 end
      part = pack('dddddd', now + ttl, ws, cur + cost, prev, first or now, pfirst)
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
      local stored, last = 0, 0
      if valid then expiry, stored, last, pos = unpackAt('ddd', raw, pos) end
      live = expiry > now
      local rate = limit / w
      local tokens = burst
      if live then
        -- A clock that stepped back (failover to a replica whose clock lags) must not take tokens away.
        local elapsed = now - last
        if elapsed < 0 then elapsed = 0 end
        tokens = stored + elapsed * rate
        if tokens > burst then tokens = burst end
      end
      allowed = tokens >= cost
      r0 = tokens
      r1 = tokens - cost
      e0 = (burst - r0) / rate
      e1 = (burst - r1) / rate
      ttl = ceil(e1)
      if ttl < 1 then ttl = 1 end
      part = pack('ddd', now + ttl, r1, now)
      if allowed then retry = 0 elseif cost > burst then retry = e0 + w else retry = (cost - tokens) / rate end
    else
      local stored = 0
      if valid then expiry, stored, pos = unpackAt('dd', raw, pos) end
      live = expiry > now
      local interval = w / limit
      local tau = burst * interval
      local tat = now
      if live and stored >= now then tat = stored end
      local newTat = tat + cost * interval
      allowed = newTat - now <= tau + 0.0001
      e0 = tat - now
      e1 = newTat - now
      r0 = (tau - e0) / interval + 0.0001
      r1 = (tau - e1) / interval + 0.0001
      ttl = ceil(e1)
      if ttl < 1 then ttl = 1 end
      part = pack('dd', now + ttl, newTat)
      if allowed then retry = 0 elseif cost > burst then retry = e0 + w else retry = newTat - tau - now end
    end
    -- `ttl` is the policy's expiry as its key's time to live used to be: whole milliseconds, at least one.
    if ttl > longest then longest = ttl end
    if expiry > storedUntil then storedUntil = expiry end
    if not allowed then
      all = false
      if retry > worstRetry then
        worstRetry = retry
        worst = i - 1
      end
    end
    V[b + 1], V[b + 2], V[b + 3], V[b + 4], V[b + 5], V[b + 6], V[b + 7] = allowed, r0, r1, e0, e1, retry, part
  end

  local consumed = mode == 2 or (mode == 0 and all)
  for i = 1, n do
    local b = (i - 1) * 7
    local remaining, reset = V[b + 2], V[b + 4]
    if consumed then remaining, reset = V[b + 3], V[b + 5] end
    if remaining < 0 then remaining = 0 end
    local q = 2 + (i - 1) * 4
    out[q + 1] = V[b + 1] and 1 or 0
    out[q + 2] = floor(remaining)
    out[q + 3] = ceil(reset)
    out[q + 4] = ceil(V[b + 6])
  end

  if consumed then
    -- A block still running (force mode reconciles during one) is kept, and the key outlives it.
    local state
    if blockUntil > now then
      state = pack('dd', blockUntil, culprit)
      local left = ceil(blockUntil - now)
      if left > longest then longest = left end
    else
      state = pack('dd', 0, 0)
    end
    for i = 1, n do state = state .. V[i * 7] end
    redis.call('SET', key, state, 'PX', longest)
  elseif mode == 0 and blockMs > 0 then
    -- The policies' states stay as they were (none of them consumed); only the block is added. Without a stored
    -- state, every policy's expiry is 0: lapsed.
    local rest
    if not valid then
      rest = string.rep(pack('d', 0), count - 2)
    elseif struct then
      rest = string.sub(raw, 17)
    else
      rest = string.match(raw, '^%S+ %S+ (.*)$')
    end
    longest = blockMs
    local left = ceil(storedUntil - now)
    if left > longest then longest = left end
    redis.call('SET', key, pack('dd', now + blockMs, worst) .. rest, 'PX', longest)
    out[1] = blockMs
    out[2] = worst
  end
end

local unpack = unpack or table.unpack
if k == 1 then
  decide(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
  -- Re-packed through a table constructor for ioredis-mock, whose Lua bridge only converts tables built that way
  -- (it is also the engine without a struct library); real servers take the table as it is.
  if struct then return out end
  return { unpack(out) }
end
local reply = {}
for j = 1, k do
  decide(KEYS[j], tonumber(ARGV[2 * j - 1]), tonumber(ARGV[2 * j]))
  local o = (j - 1) * per
  for q = 1, per do reply[o + q] = out[q] end
end
if struct then return reply end
return { unpack(reply) }
