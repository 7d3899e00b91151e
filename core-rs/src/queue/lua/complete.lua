#!lua
-- Complete claimed contacts of one partition with their outcome.
-- KEYS[1] = partition base.  ARGV[1] = now_ms, then 7 fields per contact:
--   number, token, outcome, action, at_ms, max_attempts, agent
-- action: F final | R retry at at_ms unless max_attempts reached | B callback at at_ms for agent |
--         N do-not-call-back until at_ms | S suppressed (final, no attempt) |
--         U unclaim (back to the queue now, no attempt counted)
-- A completion whose token is not the live lease's token changes nothing and answers
-- 'stale:<status>' (status letter of the contact now, '-' when unknown).
-- Returns one string per contact: final | retry | exhausted | callback | dnc | suppressed |
-- released | stale:<s>
local P = KEYS[1]
local now = tonumber(ARGV[1])
local BUCKETS = 65536
local CHUNK = 1000
local out = {}
local counts = {}
local lease_rem = {}
local retry_add = {}
local cb_add = {}

local function bump(k) counts[k] = (counts[k] or 0) + 1 end
local function flush(key, cmd, args, force)
  if #args > 0 and (force or #args >= 2 * CHUNK) then
    redis.call(cmd, key, unpack(args))
    return {}
  end
  return args
end

for i = 2, #ARGV, 7 do
  local num, token, outcome, action = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local at, max_attempts, agent = ARGV[i + 4], tonumber(ARGV[i + 5]), ARGV[i + 6]
  local kkey = P .. ':k:' .. tostring(math.fmod(tonumber(num), BUCKETS))
  local st = redis.call('HGET', kkey, num)
  local status, attempts, tok = '-', 0, ''
  if st and st ~= '' then
    local s, a, t = string.match(st, '^(%a)|(%d+)|(%d*)|')
    status, attempts, tok = s or '?', tonumber(a) or 0, t or ''
  elseif st then
    status = 'R'
  end
  if status ~= 'C' or tok ~= token then
    out[#out + 1] = 'stale:' .. status
    bump('stale')
  else
    lease_rem[#lease_rem + 1] = num
    lease_rem = flush(P .. ':lease', 'ZREM', lease_rem, false)
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
    retry_add = flush(P .. ':retry', 'ZADD', retry_add, false)
    cb_add = flush(P .. ':cb', 'ZADD', cb_add, false)
    out[#out + 1] = result
    bump(result)
    if result == 'final' or result == 'exhausted' then bump('outcome:' .. outcome) end
  end
end
flush(P .. ':lease', 'ZREM', lease_rem, true)
flush(P .. ':retry', 'ZADD', retry_add, true)
flush(P .. ':cb', 'ZADD', cb_add, true)
for k, v in pairs(counts) do redis.call('HINCRBY', P .. ':stat', k, v) end
return out
