#!lua
-- Complete claimed contacts of one partition with their outcome.
-- KEYS[1] = partition base.  ARGV[1] = now_ms, then 7 fields per contact:
--   number, token, outcome, action, at_ms, max_attempts, agent
-- action: F final | R retry at at_ms unless max_attempts reached | B callback at at_ms for agent |
--         N do-not-call-back until at_ms | S suppressed (final, no attempt) |
--         U unclaim (back to the queue now, no attempt counted)
-- A completion whose token is not the live lease's token (:lh, number -> "token|attempts|agent")
-- changes nothing and answers 'stale:<status>' (the contact's state letter, '-' when unknown).
-- Returns one string per contact: final | retry | exhausted | callback | dnc | suppressed |
-- released | stale:<s>
local P = KEYS[1]
local now = tonumber(ARGV[1])
local BUCKETS = 65536
local CHUNK = 1000
local LEASE, LH = P .. ':lease', P .. ':lh'
local out, counts = {}, {}
local released, retry_add, cb_add = {}, {}, {}

local nums = {}
for i = 2, #ARGV, 7 do nums[#nums + 1] = ARGV[i] end
local leases = {}
for i = 1, #nums, CHUNK do
  local part = redis.call('HMGET', LH, unpack(nums, i, math.min(i + CHUNK - 1, #nums)))
  for _, v in ipairs(part) do leases[#leases + 1] = v end
end

local function bump(k) counts[k] = (counts[k] or 0) + 1 end

for j, num in ipairs(nums) do
  local i = 2 + (j - 1) * 7
  local token, outcome, action = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local at, max_attempts, agent = ARGV[i + 4], tonumber(ARGV[i + 5]), ARGV[i + 6]
  local kkey = P .. ':k:' .. tostring(math.fmod(tonumber(num), BUCKETS))
  local tok, attempts = nil, 0
  if leases[j] then
    local t, a = string.match(leases[j], '^(%d+)|(%d+)|')
    tok, attempts = t, tonumber(a) or 0
  end
  if tok ~= token then
    local st = redis.call('HGET', kkey, num)
    local status = '-'
    if leases[j] then status = 'C' elseif st == '' then status = 'R' elseif st then status = string.sub(st, 1, 1) end
    out[#out + 1] = 'stale:' .. status
    bump('stale')
  else
    leases[j] = false  -- the same number twice in one call: the second is stale
    released[#released + 1] = num
    local result, state
    if action == 'S' then
      result = 'suppressed'
      state = 'D|' .. attempts .. '|0|' .. now .. '|suppressed|'
    elseif action == 'U' then
      result = 'released'
      state = 'W|' .. attempts .. '|0|' .. now .. '|released|' .. agent
      retry_add[#retry_add + 1] = now
      retry_add[#retry_add + 1] = num
    else
      attempts = attempts + 1
      if action == 'R' then
        if attempts < max_attempts then
          result = 'retry'
          state = 'W|' .. attempts .. '|0|' .. at .. '|' .. outcome .. '|'
          retry_add[#retry_add + 1] = at
          retry_add[#retry_add + 1] = num
        else
          result = 'exhausted'
          state = 'D|' .. attempts .. '|0|' .. now .. '|' .. outcome .. '|'
        end
      elseif action == 'B' then
        result = 'callback'
        state = 'B|' .. attempts .. '|0|' .. at .. '|' .. outcome .. '|' .. agent
        cb_add[#cb_add + 1] = at
        cb_add[#cb_add + 1] = num
      elseif action == 'N' then
        result = 'dnc'
        state = 'N|' .. attempts .. '|0|' .. at .. '|' .. outcome .. '|'
        retry_add[#retry_add + 1] = at
        retry_add[#retry_add + 1] = num
      else
        result = 'final'
        state = 'D|' .. attempts .. '|0|' .. now .. '|' .. outcome .. '|'
      end
    end
    redis.call('HSET', kkey, num, state)
    out[#out + 1] = result
    bump(result)
    if result == 'final' or result == 'exhausted' then bump('outcome:' .. outcome) end
  end
end
for i = 1, #released, CHUNK do
  local last = math.min(i + CHUNK - 1, #released)
  redis.call('HDEL', LH, unpack(released, i, last))
  redis.call('ZREM', LEASE, unpack(released, i, last))
end
for i = 1, #retry_add, 2 * CHUNK do redis.call('ZADD', P .. ':retry', unpack(retry_add, i, math.min(i + 2 * CHUNK - 1, #retry_add))) end
for i = 1, #cb_add, 2 * CHUNK do redis.call('ZADD', P .. ':cb', unpack(cb_add, i, math.min(i + 2 * CHUNK - 1, #cb_add))) end
for k, v in pairs(counts) do redis.call('HINCRBY', P .. ':stat', k, v) end
return out
