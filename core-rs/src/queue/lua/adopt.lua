#!lua
-- Adopt the calls of a dialer that died while its agents still had them open (connected to the
-- customer, or wrapping up): the node taking the partition over keeps each contact leased
-- until the agent's disposition completes it. Each lease moves to a new token, in a batch of
-- its own leased to the caller for lease_ms, and its dial mark is answered under that token with
-- the caller's detail; the dead dialer's batch then expires without it (its token is no longer
-- the lease's). The first token stays valid for completing it (:ad, number -> that token, read by
-- complete.lua): it is the one the agent's call record has, so the disposition needs no other
-- key written (the record is in another hash slot) and cannot race the adoption.
-- KEYS[1] = partition base.
-- ARGV: now_ms, lease_ms, then 3 per call: number, token (the dead dialer's lease), detail (what
--   the new answered mark keeps after "token|a|"; '' none).
-- Returns flat { new_token, attempts, agent } per call; new_token 0: that lease is gone or holds
-- another token (nothing changed).
local P = KEYS[1]
local now, lease_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local LH, LB, DM, AD = P .. ':lh', P .. ':lb', P .. ':dm', P .. ':ad'
local out = {}
for i = 3, #ARGV, 3 do
  local num, token, detail = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local t, attempts, agent, rest = string.match(redis.call('HGET', LH, num) or '', '^(%d+)|(%d+)|([^|]*)(.*)$')
  if t ~= nil and t == token then
    local new = redis.call('INCR', P .. ':seq')
    redis.call('HSET', LH, num, new .. '|' .. attempts .. '|' .. agent .. rest)
    local mark = new .. '|a'
    if detail ~= '' then mark = mark .. '|' .. detail end
    redis.call('HSET', DM, num, mark)
    redis.call('HSETNX', AD, num, token)  -- adopted again: the first token stays the record's
    redis.call('RPUSH', LB .. ':' .. new, num)
    redis.call('ZADD', LB, now + lease_ms, new)
    out[#out + 1] = new
    out[#out + 1] = tonumber(attempts)
    out[#out + 1] = agent
  else
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = ''
  end
end
return out
