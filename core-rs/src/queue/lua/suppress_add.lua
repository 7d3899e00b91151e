#!lua
-- Add numbers to one generation of a suppression list.
-- KEYS[1] = list base.  ARGV[1] = generation, then numbers.  Returns how many were new.
local L = KEYS[1]
local BUCKETS = @LIST_BUCKETS@
local prefix = L .. ':g' .. ARGV[1] .. ':'
local added = 0
for i = 2, #ARGV do
  local num = ARGV[i]
  added = added + redis.call('SADD', prefix .. tostring(math.fmod(tonumber(num), BUCKETS)), num)
end
if added > 0 then redis.call('HINCRBY', L .. ':count', ARGV[1], added) end
return added
