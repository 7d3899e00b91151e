#!lua
-- Claim up to N due contacts of one campaign partition, each under a lease.
-- KEYS[1] = partition base, e.g. "{c:42:p0}"; every key used below starts with it (one hash slot).
-- ARGV: now_ms, n, lease_ms, with_attrs (0/1), expired_scan_limit (lease batches),
--       callback agents: "*" any callback; otherwise "|a|b|" - only callbacks reserved for these
--       agents (the others stay queued for theirs; "||" takes none),
--       interrupted: "R" retried (the policy's retry_on has it) or "F" final, max_attempts,
--       retry_at_ms (when a retried interrupted contact is due),
--       dialling (0/1): mark every claimed contact dialled (its INVITE leaves next: mark.lua),
--       owner: written into each dial mark ("token|d|owner"; '' none): whose calls they are,
--       floor: the highest token the caller's earlier claims got (0: none). While :seq is
--       behind it, Redis lost acknowledged writes (a restart from an AOF missing its last
--       second): nothing is claimed and { 'rewound', seq } is returned, so that the caller
--       re-asserts its calls in progress (reassert.lua) before their contacts are handed out.
--
-- Leases: the contacts of one claim share a deadline and a run of tokens first..first+n-1.
--   :lh            hash  number -> "token|attempts|agent[|ref]" of every live lease (the truth);
--                        ref = "page.offset.length" of the contact's attributes in :ap:<page>
--   :lb            zset  first token of a claim batch -> its deadline
--   :lb:<first>    list  the numbers of that batch (read only when the batch expires)
--   :dm            hash  number -> "token|d[|owner]" (its INVITE left) or "token|a[|detail]"
--                        (answered): mark.lua; what follows the kind is the dialler's, unread here
-- Completing a contact deletes its :lh and :dm fields; when a batch's deadline passes, its
-- numbers whose :lh token is still in the batch's run were never completed (the dialer died, or
-- lost them). By their mark for that token:
--   none  never dialled: back to :retry, due at the deadline, no attempt counted;
--   d     dialled, cut before an answer: an attempt with outcome `interrupted`, retried (at
--         retry_at_ms) within max_attempts if the policy retries it, else final;
--   a     answered: an attempt, final, outcome `answered` (nobody who answered is called again).
--
-- Order of delivery: due callbacks, then due retries, then fresh contacts (FIFO).
-- Fresh contacts cost no per-contact Redis call (their attempts are 0) unless the partition holds
-- attributes (:apseq exists): then their state ("@ref") is read so the lease carries the ref.
--
-- Returns { meta, first_token, numbers, details, attrs } where
--   meta    = { suppression_lists, expired_count, versions the contacts were checked against,
--               interrupted: flat { number, attempts, result } per dialled contact whose lease
--               expired, result = answered | retry | interrupted (final) | exhausted }
--   numbers = the claimed numbers; the i-th has token first_token + i - 1
--   details = flat { i, attempts, source, agent, ... } for contacts that are not fresh
--   attrs   = raw attribute strings aligned with numbers (empty unless with_attrs)
local P = KEYS[1]
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local with_attrs = ARGV[4] == '1'
local scan = tonumber(ARGV[5])
local cb_agents = ARGV[6] or '*'
local retry_interrupted = ARGV[7] == 'R'
local max_attempts = tonumber(ARGV[8] or '1')
local retry_at = ARGV[9] or ARGV[1]
local dialling = ARGV[10] == '1'
local owner = ARGV[11] or ''
local floor = tonumber(ARGV[12] or '0') or 0
local BUCKETS = @BUCKETS@
local CHUNK = 1000
local LH, LB, DM = P .. ':lh', P .. ':lb', P .. ':dm'
if floor > 0 then
  local seq = tonumber(redis.call('GET', P .. ':seq') or '0')
  if seq < floor then return { 'rewound', seq } end
end
local HAS_ATTRS = redis.call('EXISTS', P .. ':apseq') == 1

local function bucket(num) return tostring(math.fmod(tonumber(num), BUCKETS)) end
local function batched(cmd, key, args, from, step)
  step = step or CHUNK
  for i = from or 1, #args, step do
    redis.call(cmd, key, unpack(args, i, math.min(i + step - 1, #args)))
  end
end

-- 1. Lease batches past their deadline.
local nexp = 0
local interrupted, icounts = {}, {}
local function ibump(k) icounts[k] = (icounts[k] or 0) + 1 end
local batches = redis.call('ZRANGE', LB, '-inf', now, 'BYSCORE', 'LIMIT', 0, scan, 'WITHSCORES')
for b = 1, #batches, 2 do
  local first, deadline = tonumber(batches[b]), batches[b + 1]
  local list = LB .. ':' .. batches[b]
  local nums = redis.call('LRANGE', list, 0, -1)
  if #nums > 0 then
    local last = first + #nums - 1
    local leases, marks = {}, {}
    for i = 1, #nums, CHUNK do
      local part = redis.call('HMGET', LH, unpack(nums, i, math.min(i + CHUNK - 1, #nums)))
      for _, v in ipairs(part) do leases[#leases + 1] = v end
      part = redis.call('HMGET', DM, unpack(nums, i, math.min(i + CHUNK - 1, #nums)))
      for _, v in ipairs(part) do marks[#marks + 1] = v end
    end
    local gone, zadd = {}, {}
    for i, num in ipairs(nums) do
      local t, attempts, agent, ref = string.match(leases[i] or '', '^(%d+)|(%d+)|([^|]*)|?(.*)$')
      t = tonumber(t)
      if t and t >= first and t <= last then
        -- The lease field goes, so a late completion with the old token is stale.
        if ref == '' then ref = '0' end
        local mt, mk = string.match(marks[i] or '', '^(%d+)|(%a)')
        local kkey = P .. ':k:' .. bucket(num)
        if mt and tonumber(mt) == t then
          local a = tonumber(attempts) + 1
          local result
          if mk == 'a' then
            result = 'answered'
            redis.call('HSET', kkey, num, 'D|' .. a .. '|' .. ref .. '|' .. now .. '|answered|' .. agent)
            ibump('outcome:answered')
          elseif retry_interrupted and a < max_attempts then
            result = 'retry'
            redis.call('HSET', kkey, num, 'W|' .. a .. '|' .. ref .. '|' .. retry_at .. '|interrupted|' .. agent)
            zadd[#zadd + 1] = retry_at
            zadd[#zadd + 1] = num
          else
            result = retry_interrupted and 'exhausted' or 'interrupted'
            redis.call('HSET', kkey, num, 'D|' .. a .. '|' .. ref .. '|' .. now .. '|interrupted|' .. agent)
            ibump('outcome:interrupted')
          end
          ibump(result == 'retry' and 'retry' or (result == 'exhausted' and 'exhausted' or 'final'))
          ibump('interrupted')
          interrupted[#interrupted + 1] = num
          interrupted[#interrupted + 1] = a
          interrupted[#interrupted + 1] = result
        else
          -- W: waiting, never dialled: no attempt counted.
          redis.call('HSET', kkey, num,
            'W|' .. attempts .. '|' .. ref .. '|' .. deadline .. '|lease_expired|' .. agent)
          zadd[#zadd + 1] = deadline
          zadd[#zadd + 1] = num
        end
        gone[#gone + 1] = num
      end
    end
    if #gone > 0 then
      batched('HDEL', LH, gone)
      batched('HDEL', DM, gone)
      if redis.call('EXISTS', P .. ':ad') == 1 then batched('HDEL', P .. ':ad', gone) end
      if #zadd > 0 then batched('ZADD', P .. ':retry', zadd, 1, 2 * CHUNK) end
      nexp = nexp + #gone
    end
  end
  redis.call('DEL', list)
  redis.call('ZREM', LB, batches[b])
end
if nexp > 0 then redis.call('HINCRBY', P .. ':stat', 'lease_expired', nexp) end
for k, v in pairs(icounts) do redis.call('HINCRBY', P .. ':stat', k, v) end

-- 2. Pick candidates in priority order.
local picked, details, refs = {}, {}, {}
-- The attribute ref in a state's third field ('0' or '' when none).
local function ref_of(r) if r == nil or r == '0' then return '' end return r end
local function take_due(zkey, source)
  local want = n - #picked
  if want <= 0 then return end
  local due = redis.call('ZRANGE', zkey, '-inf', now, 'BYSCORE', 'LIMIT', 0, want)
  if #due == 0 then return end
  batched('ZREM', zkey, due)
  for _, num in ipairs(due) do
    picked[#picked + 1] = num
    local attempts, agent = '0', ''
    local st = redis.call('HGET', P .. ':k:' .. bucket(num), num)
    if st and st ~= '' then
      local a, r, ag = string.match(st, '^%a|(%d+)|([^|]*)|%d*|[^|]*|(.*)$')
      attempts, agent = a or '0', ag or ''
      refs[#picked] = ref_of(r)
    end
    details[#details + 1] = #picked
    details[#details + 1] = attempts
    details[#details + 1] = source
    details[#details + 1] = agent
  end
end
-- Callbacks go to the agent they are reserved for: with a list of agents, due callbacks of
-- other agents are passed over (looked at up to CHUNK of them) and stay due.
local function take_callbacks()
  if cb_agents == '*' then return take_due(P .. ':cb', 'callback') end
  local want = n - #picked
  if want <= 0 or cb_agents == '||' then return end
  local due = redis.call('ZRANGE', P .. ':cb', '-inf', now, 'BYSCORE', 'LIMIT', 0, CHUNK)
  for _, num in ipairs(due) do
    if n - #picked <= 0 then break end
    local st = redis.call('HGET', P .. ':k:' .. bucket(num), num) or ''
    local a, r, ag = string.match(st, '^%a|(%d+)|([^|]*)|%d*|[^|]*|(.*)$')
    if ag and ag ~= '' and string.find(cb_agents, '|' .. ag .. '|', 1, true) then
      redis.call('ZREM', P .. ':cb', num)
      picked[#picked + 1] = num
      refs[#picked] = ref_of(r)
      details[#details + 1] = #picked
      details[#details + 1] = a or '0'
      details[#details + 1] = 'callback'
      details[#details + 1] = ag
    end
  end
end
take_callbacks()
take_due(P .. ':retry', 'retry')
local want = n - #picked
if want > 0 then
  local fresh = redis.call('LPOP', P .. ':ready', want)
  if fresh then
    for _, num in ipairs(fresh) do
      picked[#picked + 1] = num
      if HAS_ATTRS then
        local st = redis.call('HGET', P .. ':k:' .. bucket(num), num)
        if st and string.sub(st, 1, 1) == '@' then refs[#picked] = string.sub(st, 2) end
      end
    end
  end
end

local m = redis.call('HMGET', P .. ':meta', 'suppression', 'supver')
local meta = { m[1] or '', nexp, m[2] or '', interrupted }
if #picked == 0 then return { meta, 0, {}, {}, {} } end

-- 3. Lease every picked contact.
local first = redis.call('INCRBY', P .. ':seq', #picked) - #picked + 1
local hset = {}
local d = 1
for i, num in ipairs(picked) do
  local attempts, agent = '0', ''
  if details[d] == i then
    attempts, agent = details[d + 1], details[d + 3]
    d = d + 4
  end
  hset[#hset + 1] = num
  local lease = (first + i - 1) .. '|' .. attempts .. '|' .. agent
  if refs[i] and refs[i] ~= '' then lease = lease .. '|' .. refs[i] end
  hset[#hset + 1] = lease
end
batched('HSET', LH, hset, 1, 2 * CHUNK)
if dialling then
  local dm = {}
  local tail = owner ~= '' and ('|d|' .. owner) or '|d'
  for i, num in ipairs(picked) do
    dm[#dm + 1] = num
    dm[#dm + 1] = (first + i - 1) .. tail
  end
  batched('HSET', DM, dm, 1, 2 * CHUNK)
end
batched('RPUSH', LB .. ':' .. first, picked)
redis.call('ZADD', LB, now + lease_ms, first)
local attrs = {}
if with_attrs then
  for i = 1, #picked do
    local page, off, len = string.match(refs[i] or '', '^(%d+)%.(%d+)%.(%d+)$')
    if page then
      attrs[i] = redis.call('GETRANGE', P .. ':ap:' .. page, off, tonumber(off) + tonumber(len) - 1)
    else
      attrs[i] = ''
    end
  end
end
redis.call('HINCRBY', P .. ':stat', 'claimed', #picked)
return { meta, first, picked, details, attrs }
