--! include placing.lua
-- Not to be dialled after all (a skip, a disposition first). KEYS: dial set, dialing hash, owner
-- lease. ARGV: call id. 1 if the call will not be placed (it was waiting, or its node died); 0 if
-- a live node is placing it.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then return 1 end
if placing() == 'live' then return 0 end
return 1
