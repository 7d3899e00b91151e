#!lua
-- Complete claimed contacts of one partition with their outcome.
-- KEYS[1] = partition base.
-- ARGV[1] = now_ms, ARGV[2] = number of profiles, then 5 fields per profile:
--   outcome, action, at_ms, max_attempts, agent
-- then 3 fields per contact: number, token, profile index (1-based).
-- action: F final | R retry at at_ms unless max_attempts reached | B callback at at_ms for agent |
--         N do-not-call-back until at_ms | S suppressed (final, no attempt) |
--         U unclaim (back to the queue now, no attempt counted)
-- The contact's state becomes "S|attempts|ref|time|outcome|agent": ref (where its attributes are,
-- from the lease; '0' for none) is kept through every transition.
-- Completing removes the contact's lease (:lh) and its dial mark (:dm, mark.lua).
-- A completion whose token is not the live lease's token (:lh, number -> "token|attempts|agent[|ref]")
-- changes nothing and answers 'stale:<status>' (the contact's state letter, '-' when unknown);
-- except the first token of an adopted call (:ad, adopt.lua), which its agent's record has.
-- Returns one string per contact: final | retry | exhausted | callback | dnc | suppressed |
-- released | stale:<s>
local P = KEYS[1]
local now = ARGV[1]
local nprof = tonumber(ARGV[2])
local BUCKETS = @BUCKETS@
local CHUNK = 1000
local LH, KP, AD = P .. ':lh', P .. ':k:', P .. ':ad'
local HAS_AD = redis.call('EXISTS', AD) == 1

-- Profiles: what to do, and the parts of the state string that do not depend on the contact.
local prof = {}
for p = 1, nprof do
  local b = 2 + (p - 1) * 5
  local outcome, action, at, max, agent = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], tonumber(ARGV[b + 4]), ARGV[b + 5]
  local x = { action = action, at = at, max = max, outcome = outcome }
  if action == 'S' then
    x.result, x.state = 'suppressed', { 'D|', '|' .. now .. '|suppressed|' }
  elseif action == 'U' then
    x.result, x.state, x.zset = 'released', { 'W|', '|' .. now .. '|released|' .. agent }, ':retry'
  elseif action == 'R' then
    x.result, x.state, x.zset = 'retry', { 'W|', '|' .. at .. '|' .. outcome .. '|' }, ':retry'
    x.final_state = { 'D|', '|' .. now .. '|' .. outcome .. '|' }
  elseif action == 'B' then
    x.result, x.state, x.zset = 'callback', { 'B|', '|' .. at .. '|' .. outcome .. '|' .. agent }, ':cb'
  elseif action == 'N' then
    x.result, x.state, x.zset = 'dnc', { 'N|', '|' .. at .. '|' .. outcome .. '|' }, ':retry'
  else
    x.result, x.state = 'final', { 'D|', '|' .. now .. '|' .. outcome .. '|' }
  end
  if action == 'U' then x.at = now end
  prof[p] = x
end

local base = 3 + nprof * 5
local nums = {}
for i = base, #ARGV, 3 do nums[#nums + 1] = ARGV[i] end
local leases = {}
for i = 1, #nums, CHUNK do
  local part = redis.call('HMGET', LH, unpack(nums, i, math.min(i + CHUNK - 1, #nums)))
  for _, v in ipairs(part) do leases[#leases + 1] = v end
end

local out, counts, released, finished = {}, {}, {}, {}
local zadd = { [':retry'] = {}, [':cb'] = {} }
local function bump(k) counts[k] = (counts[k] or 0) + 1 end

for j, num in ipairs(nums) do
  local i = base + (j - 1) * 3
  local token, x = ARGV[i + 1], prof[tonumber(ARGV[i + 2])]
  local lease = leases[j]
  local tok, attempts, ref
  if lease and not finished[num] then tok, attempts, ref = string.match(lease, '^(%d+)|(%d+)|[^|]*|?(.*)$') end
  if HAS_AD and tok and tok ~= token and redis.call('HGET', AD, num) == token then
    tok = token  -- an adopted call, completed with the token its agent's record has
  end
  local kkey = KP .. (num % BUCKETS)
  if tok ~= token then
    local st = redis.call('HGET', kkey, num)
    local status = '-'
    if lease and not finished[num] then status = 'C'
    elseif st == '' or (st and string.sub(st, 1, 1) == '@') then status = 'R'
    elseif st then status = string.sub(st, 1, 1) end
    out[j] = 'stale:' .. status
    bump('stale')
  else
    finished[num] = true  -- the same number twice in one call: the second is stale
    released[#released + 1] = num
    attempts = tonumber(attempts)
    if x.action ~= 'S' and x.action ~= 'U' then attempts = attempts + 1 end
    local result, state, zset = x.result, x.state, x.zset
    if x.action == 'R' and attempts >= x.max then
      result, state, zset = 'exhausted', x.final_state, nil
    end
    if ref == '' then ref = '0' end
    redis.call('HSET', kkey, num, state[1] .. attempts .. '|' .. ref .. state[2])
    if zset then
      local z = zadd[zset]
      z[#z + 1] = x.at
      z[#z + 1] = num
    end
    out[j] = result
    bump(result)
    if result == 'final' or result == 'exhausted' then bump('outcome:' .. x.outcome) end
  end
end
for i = 1, #released, CHUNK do
  redis.call('HDEL', LH, unpack(released, i, math.min(i + CHUNK - 1, #released)))
  redis.call('HDEL', P .. ':dm', unpack(released, i, math.min(i + CHUNK - 1, #released)))
  if HAS_AD then redis.call('HDEL', AD, unpack(released, i, math.min(i + CHUNK - 1, #released))) end
end
for key, z in pairs(zadd) do
  for i = 1, #z, 2 * CHUNK do redis.call('ZADD', P .. key, unpack(z, i, math.min(i + 2 * CHUNK - 1, #z))) end
end
for k, v in pairs(counts) do redis.call('HINCRBY', P .. ':stat', k, v) end
return out
