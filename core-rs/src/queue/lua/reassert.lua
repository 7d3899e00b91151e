#!lua
-- Re-assert the claims a dialer still has in progress (and the ones it completed in the last
-- seconds) after Redis lost writes it had acknowledged: a restart from an AOF missing its last
-- second, a replica promoted before it had them. Until this has run, the claim script refuses
-- to claim (its floor), so none of these contacts is handed out again.
-- KEYS[1] = partition base.
-- ARGV: now_ms, lease_ms, floor (the highest token the caller handed out), then 6 fields per
--   claim: number, token, batch (its first token), attempts (before this call), agent ('' none),
--   mark (the dial mark's value after "token|": "d[|owner]", "a[|detail]", '' none).
-- For each claim, by what Redis still has:
--   held      its lease is there: its mark is written again (an answered one is never weakened)
--   restored  its lease is gone and the contact is back in a queue (:ready, :retry, :cb) with
--             the attempts it was claimed with: the claim was lost. The lease and the mark are
--             written again, the contact taken out of that queue; its attribute ref comes from
--             the state it is in
--   done      its lease is gone and its state says it moved on (more attempts, or final): its
--             completion survived, or its lease expired and was counted
--   taken     another lease holds it now (claimed again before this ran): nothing changed
-- Each batch of a held or restored claim gets its deadline back (now + lease_ms, never earlier
-- than it is) and its list (the numbers, each at its token's place, read when it expires).
-- :seq is raised to the highest token named, and to the floor.
-- Returns one string per claim.
local P = KEYS[1]
local now, lease_ms, floor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local BUCKETS = @BUCKETS@
local SCAN = 100000
local LH, LB, DM = P .. ':lh', P .. ':lb', P .. ':dm'
local out, batches = {}, {}
local top = floor

for i = 4, #ARGV, 6 do
  local num, token, batch, attempts, agent, mark =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4], ARGV[i + 5]
  local t = tonumber(token)
  if t > top then top = t end
  local result
  local lease = redis.call('HGET', LH, num)
  if lease then
    result = string.match(lease, '^(%d+)|') == token and 'held' or 'taken'
  else
    local st = redis.call('HGET', P .. ':k:' .. tostring(math.fmod(tonumber(num), BUCKETS)), num)
    local letter = st and string.sub(st, 1, 1) or ''
    local ref = ''
    result = 'done'
    if letter == '' or letter == '@' then
      -- Fresh: the claim that took it off :ready was lost. It is near the head of :ready.
      if letter == '@' then ref = string.sub(st, 2) end
      if redis.call('LPOS', P .. ':ready', num, 'MAXLEN', SCAN) then
        redis.call('LREM', P .. ':ready', 1, num)
      end
      result = 'restored'
    elseif letter == 'W' or letter == 'B' or letter == 'N' then
      local a, r = string.match(st, '^%a|(%d+)|([^|]*)|')
      if a and tonumber(a) <= attempts then
        if r and r ~= '0' then ref = r end
        redis.call('ZREM', P .. ':retry', num)
        redis.call('ZREM', P .. ':cb', num)
        result = 'restored'
      end
    end
    if result == 'restored' then
      local l = token .. '|' .. attempts .. '|' .. agent
      if ref ~= '' then l = l .. '|' .. ref end
      redis.call('HSET', LH, num, l)
    end
  end
  if result == 'held' or result == 'restored' then
    if mark ~= '' then
      local mt, mk = string.match(redis.call('HGET', DM, num) or '', '^(%d+)|(%a)')
      if string.sub(mark, 1, 1) == 'a' or mt ~= token or mk ~= 'a' then
        redis.call('HSET', DM, num, token .. '|' .. mark)
      end
    end
    local b = batches[batch] or {}
    b[t - tonumber(batch) + 1] = num
    batches[batch] = b
  end
  out[#out + 1] = result
end

for first, at in pairs(batches) do
  local list = LB .. ':' .. first
  local cur = redis.call('LRANGE', list, 0, -1)
  local n = #cur
  for pos in pairs(at) do if pos > n then n = pos end end
  local rebuilt = {}
  for pos = 1, n do rebuilt[pos] = at[pos] or cur[pos] or '' end
  redis.call('DEL', list)
  redis.call('RPUSH', list, unpack(rebuilt))
  local d = redis.call('ZSCORE', LB, first)
  if not d or tonumber(d) < now + lease_ms then redis.call('ZADD', LB, now + lease_ms, first) end
end
local seq = tonumber(redis.call('GET', P .. ':seq') or '0')
if seq < top then redis.call('SET', P .. ':seq', top) end
return out
