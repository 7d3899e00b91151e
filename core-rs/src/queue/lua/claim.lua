#!lua
-- Claim up to N due contacts of one campaign partition, each under a lease.
-- KEYS[1] = partition base, e.g. "{c:42:p0}"; every key used below starts with it (one hash slot).
-- ARGV: now_ms, n, lease_ms, with_attrs (0/1), expired_scan_limit
-- Order: expired leases go back to :retry (due at their deadline, no attempt counted), then due
-- callbacks, then due retries, then fresh contacts (FIFO).
-- A lease is a member of :lease (score = deadline) plus a field of :lh, number -> "token|attempts|agent".
-- Fresh contacts cost no per-contact call here: their attempts are 0 and the batch's lease
-- fields and deadlines are written with one HSET and one ZADD.
-- Returns { meta, c1, c2, ... } where meta = {suppression_lists, expired_count} and each claim is
-- { number, token, attempts, source, agent, attrs }.
local P = KEYS[1]
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local with_attrs = ARGV[4] == '1'
local scan = tonumber(ARGV[5])
local BUCKETS = 65536
local CHUNK = 1000
local LEASE, LH = P .. ':lease', P .. ':lh'

local function bucket(num) return tostring(math.fmod(tonumber(num), BUCKETS)) end
local function batched(cmd, key, args)
  for i = 1, #args, CHUNK do
    redis.call(cmd, key, unpack(args, i, math.min(i + CHUNK - 1, #args)))
  end
end

-- 1. Leases past their deadline (the claimer died or stalled) go back to :retry.
local expired = redis.call('ZRANGE', LEASE, '-inf', now, 'BYSCORE', 'LIMIT', 0, scan, 'WITHSCORES')
local nexp = #expired / 2
if nexp > 0 then
  local nums, zadd = {}, {}
  for i = 1, #expired, 2 do
    nums[#nums + 1] = expired[i]
    zadd[#zadd + 1] = expired[i + 1]
    zadd[#zadd + 1] = expired[i]
  end
  local leases = redis.call('HMGET', LH, unpack(nums))
  for i, num in ipairs(nums) do
    local _, attempts, agent = string.match(leases[i] or '', '^(%d*)|(%d*)|(.*)$')
    -- W: waiting; the lease field goes, so a late completion with the old token is stale.
    redis.call('HSET', P .. ':k:' .. bucket(num), num,
      'W|' .. (attempts or '0') .. '|0|' .. zadd[2 * i - 1] .. '|lease_expired|' .. (agent or ''))
  end
  batched('HDEL', LH, nums)
  batched('ZREM', LEASE, nums)
  for i = 1, #zadd, 2 * CHUNK do redis.call('ZADD', P .. ':retry', unpack(zadd, i, math.min(i + 2 * CHUNK - 1, #zadd))) end
  redis.call('HINCRBY', P .. ':stat', 'lease_expired', nexp)
end

-- 2. Pick candidates in priority order.
local picked, sources = {}, {}
local function take_due(zkey, source)
  local want = n - #picked
  if want <= 0 then return end
  local due = redis.call('ZRANGE', zkey, '-inf', now, 'BYSCORE', 'LIMIT', 0, want)
  if #due == 0 then return end
  batched('ZREM', zkey, due)
  for _, num in ipairs(due) do picked[#picked + 1] = num; sources[#picked] = source end
end
take_due(P .. ':cb', 'callback')
take_due(P .. ':retry', 'retry')
local want = n - #picked
if want > 0 then
  local fresh = redis.call('LPOP', P .. ':ready', want)
  if fresh then
    for _, num in ipairs(fresh) do picked[#picked + 1] = num; sources[#picked] = 'fresh' end
  end
end

local meta = { redis.call('HGET', P .. ':meta', 'suppression') or '', nexp }
local out = { meta }
if #picked == 0 then return out end

-- 3. Lease every picked contact: a token from the partition's sequence, a deadline.
local deadline = now + lease_ms
local first = redis.call('INCRBY', P .. ':seq', #picked) - #picked + 1
local hset, zadd = {}, {}
for i, num in ipairs(picked) do
  local source = sources[i]
  local attempts, agent = 0, ''
  if source ~= 'fresh' then
    local st = redis.call('HGET', P .. ':k:' .. bucket(num), num)
    if st and st ~= '' then
      local a, ag = string.match(st, '^%a|(%d+)|%d*|%d*|[^|]*|(.*)$')
      attempts = tonumber(a) or 0
      agent = ag or ''
    end
  end
  local token = first + i - 1
  hset[#hset + 1] = num
  hset[#hset + 1] = token .. '|' .. attempts .. '|' .. agent
  zadd[#zadd + 1] = deadline
  zadd[#zadd + 1] = num
  local attrs = false
  if with_attrs then attrs = redis.call('HGET', P .. ':a:' .. bucket(num), num) end
  out[#out + 1] = { num, token, attempts, source, agent, attrs or '' }
end
for i = 1, #hset, 2 * CHUNK do
  redis.call('HSET', LH, unpack(hset, i, math.min(i + 2 * CHUNK - 1, #hset)))
  redis.call('ZADD', LEASE, unpack(zadd, i, math.min(i + 2 * CHUNK - 1, #zadd)))
end
redis.call('HINCRBY', P .. ':stat', 'claimed', #picked)
return out
