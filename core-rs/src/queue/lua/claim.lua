#!lua
-- Claim up to N due contacts of one campaign partition, each under a lease.
-- KEYS[1] = partition base, e.g. "{c:42:p0}"; every key used below starts with it (one hash slot).
-- ARGV: now_ms, n, lease_ms, with_attrs (0/1), expired_scan_limit
-- Order: expired leases go back to :retry (due at their deadline, no attempt counted), then due
-- callbacks, then due retries, then fresh contacts (FIFO).
-- Returns { meta, c1..., c2..., ... } where meta = {suppression_lists, expired_count} and each
-- claim is { number, token, attempts, source, agent, attrs }.
local P = KEYS[1]
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local with_attrs = ARGV[4] == '1'
local scan = tonumber(ARGV[5])
local BUCKETS = 65536
local CHUNK = 1000

local function bucket(num) return tostring(math.fmod(tonumber(num), BUCKETS)) end

-- 1. Leases past their deadline: the claimer died or stalled.
local expired = redis.call('ZRANGE', P .. ':lease', '-inf', now, 'BYSCORE', 'LIMIT', 0, scan, 'WITHSCORES')
local nexp = #expired / 2
if nexp > 0 then
  local zadd, zrem = {}, {}
  for i = 1, #expired, 2 do
    local num, deadline = expired[i], expired[i + 1]
    local kkey = P .. ':k:' .. bucket(num)
    local st = redis.call('HGET', kkey, num)
    local attempts = 0
    local agent = ''
    if st then
      local _, a, _, _, _, ag = string.match(st, '^(%a)|(%d+)|(%d*)|(%d*)|([^|]*)|(.*)$')
      attempts = tonumber(a) or 0
      agent = ag or ''
    end
    -- W: waiting; token 0 makes any late completion with the old token stale.
    redis.call('HSET', kkey, num, 'W|' .. attempts .. '|0|' .. deadline .. '|lease_expired|' .. agent)
    zadd[#zadd + 1] = deadline
    zadd[#zadd + 1] = num
    zrem[#zrem + 1] = num
    if #zrem >= CHUNK then
      redis.call('ZADD', P .. ':retry', unpack(zadd)); redis.call('ZREM', P .. ':lease', unpack(zrem))
      zadd, zrem = {}, {}
    end
  end
  if #zrem > 0 then
    redis.call('ZADD', P .. ':retry', unpack(zadd)); redis.call('ZREM', P .. ':lease', unpack(zrem))
  end
  redis.call('HINCRBY', P .. ':stat', 'lease_expired', nexp)
end

-- 2. Pick candidates in priority order.
local picked = {}   -- { {num, source}, ... }
local function take_due(zkey, source)
  local want = n - #picked
  if want <= 0 then return end
  local due = redis.call('ZRANGE', zkey, '-inf', now, 'BYSCORE', 'LIMIT', 0, want)
  if #due == 0 then return end
  for i = 1, #due, CHUNK do
    redis.call('ZREM', zkey, unpack(due, i, math.min(i + CHUNK - 1, #due)))
  end
  for _, num in ipairs(due) do picked[#picked + 1] = { num, source } end
end
take_due(P .. ':cb', 'callback')
take_due(P .. ':retry', 'retry')
local want = n - #picked
if want > 0 then
  local fresh = redis.call('LPOP', P .. ':ready', want)
  if fresh then
    for _, num in ipairs(fresh) do picked[#picked + 1] = { num, 'fresh' } end
  end
end

local meta = { redis.call('HGET', P .. ':meta', 'suppression') or '', nexp }
local out = { meta }
if #picked == 0 then return out end

-- 3. Lease every picked contact: a token from the partition's sequence, a deadline.
local deadline = now + lease_ms
local first = redis.call('INCRBY', P .. ':seq', #picked) - #picked + 1
local zadd = {}
for i, pk in ipairs(picked) do
  local num, source = pk[1], pk[2]
  local b = bucket(num)
  local kkey = P .. ':k:' .. b
  local st = redis.call('HGET', kkey, num)
  local attempts, agent = 0, ''
  if st and st ~= '' then
    local _, a, _, _, _, ag = string.match(st, '^(%a)|(%d+)|(%d*)|(%d*)|([^|]*)|(.*)$')
    attempts = tonumber(a) or 0
    agent = ag or ''
  end
  local token = first + i - 1
  redis.call('HSET', kkey, num, 'C|' .. attempts .. '|' .. token .. '|' .. deadline .. '||' .. agent)
  zadd[#zadd + 1] = deadline
  zadd[#zadd + 1] = num
  if #zadd >= 2 * CHUNK then redis.call('ZADD', P .. ':lease', unpack(zadd)); zadd = {} end
  local attrs = false
  if with_attrs then attrs = redis.call('HGET', P .. ':a:' .. b, num) end
  out[#out + 1] = { num, token, attempts, source, agent, attrs or '' }
end
if #zadd > 0 then redis.call('ZADD', P .. ':lease', unpack(zadd)) end
redis.call('HINCRBY', P .. ':stat', 'claimed', #picked)
return out
