--! include placing.lua
-- The agent says call: due now. KEYS: dial set, dialing hash, owner lease. ARGV: call id, now.
-- 1 if the call is due now; 0 if a live node is placing it (or it was never offered).
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return 1
end
if placing() == 'free' then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return 1
end
return 0
