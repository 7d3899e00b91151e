#!lua
-- Which of the given numbers are on a suppression list?
-- KEYS[1] = list base, e.g. "{s:dnc}".  ARGV = numbers.
-- The list's live generation is in KEYS[1]..':gen'; its members are in bucketed integer sets
-- KEYS[1]..':g<gen>:<bucket>' (compact intsets).  Returns a string of '0'/'1', one per number.
local L = KEYS[1]
local gen = redis.call('GET', L .. ':gen')
if not gen then return string.rep('0', #ARGV) end
local BUCKETS = @LIST_BUCKETS@
local prefix = L .. ':g' .. gen .. ':'
local out = {}
for i = 1, #ARGV do
  local num = ARGV[i]
  out[i] = tostring(redis.call('SISMEMBER', prefix .. tostring(math.fmod(tonumber(num), BUCKETS)), num))
end
return table.concat(out)
