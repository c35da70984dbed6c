-- Looks a response up and, on a miss or an expired copy, hands out the fill lease (one filler cluster-wide);
-- on a copy inside its stale-while-revalidate window, hands out the same lease to one background refresher.
-- An entry value is '<freshUntil ms>:<staleUntil ms>:<payload>' so the script can judge it without decoding it.
-- KEYS[1]  the primary key's Vary spec (which request fields select a variant)
-- KEYS[2]  the variant the caller computed from the spec it assumed
-- KEYS[3]  the primary key's fill lease
-- ARGV[1]  the Vary spec the caller assumed when it computed KEYS[2]
-- ARGV[2]  the caller's lease token
-- ARGV[3]  lease time to live in ms
-- ARGV[4]  '1' when the caller may take the lease (a GET that will run the handler), '0' otherwise
-- Returns  { server time ms, spec known (0|1), spec, entry or '', state, lease }; state is one of fresh, stale
--          (within stale-while-revalidate), expired (kept for stale-if-error only), miss, mismatch; lease is 1 when
--          the caller holds it, 0 when another request does, 2 when the last fill could not be stored (marker '!')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000.0)
local nowText = string.format('%.0f', now)
local spec = redis.call('GET', KEYS[1])
local known = 0
if spec then
  known = 1
  if spec ~= ARGV[1] then
    return { nowText, known, spec, '', 'mismatch', 0 }
  end
else
  spec = ''
end

local function lease()
  if ARGV[4] ~= '1' then return 0 end
  local holder = redis.call('GET', KEYS[3])
  if not holder then
    redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
    return 1
  end
  if holder == ARGV[2] then return 1 end
  if holder == '!' then return 2 end
  return 0
end

local entry = redis.call('GET', KEYS[2])
if entry then
  local freshText, staleText = string.match(entry, '^(%d+):(%d+):')
  -- Appending '.0' keeps the parse in floating point (Lua engines with 32-bit integers would overflow).
  local freshUntil = tonumber(freshText .. '.0')
  local staleUntil = tonumber(staleText .. '.0')
  if now < freshUntil then return { nowText, known, spec, entry, 'fresh', 0 } end
  if now < staleUntil then return { nowText, known, spec, entry, 'stale', lease() } end
  return { nowText, known, spec, entry, 'expired', lease() }
end
return { nowText, known, spec, '', 'miss', lease() }
