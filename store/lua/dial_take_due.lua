-- The handed calls due by now, taken out of the dial set and noted as being placed by a node.
-- KEYS: dial set, dialing hash. ARGV: now, n, node. Returns the call ids.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then
  redis.call('ZREM', KEYS[1], unpack(due))
  for _, id in ipairs(due) do redis.call('HSET', KEYS[2], id, ARGV[3]) end
end
return due
