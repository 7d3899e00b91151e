-- Shared by dial_now.lua and withdraw.lua (included): is a handed call being placed by a live
-- node? Then 'live'. A node that lost the partition's lease (it died) placed nothing more: its
-- note goes and the call is free again ('free'). Not noted: 'none'.
-- KEYS[2]: dialing hash, KEYS[3]: the partition's owner lease. ARGV[1]: call id.
local function placing()
  local node = redis.call('HGET', KEYS[2], ARGV[1])
  if not node then return 'none' end
  if redis.call('GET', KEYS[3]) == node then return 'live' end
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 'free'
end
