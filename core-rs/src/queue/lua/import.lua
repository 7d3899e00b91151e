#!lua
-- Add contacts to one partition: a contact is new when its number is not yet known to the
-- partition (HSETNX on its state bucket); new ones are appended to :ready in file order.
-- KEYS[1] = partition base.  ARGV[1] = attribute-columns id ('' for none), then pairs:
--   number, attrs ('' for none)
-- Returns { added, duplicates }.
local P = KEYS[1]
local cols = ARGV[1] .. '\31'
local BUCKETS = @BUCKETS@
local CHUNK = 1000
local call = redis.call
local kp, ap = P .. ':k:', P .. ':a:'
local push = {}
local added, dups = 0, 0
for i = 2, #ARGV, 2 do
  local num, attrs = ARGV[i], ARGV[i + 1]
  local b = num % BUCKETS
  if call('HSETNX', kp .. b, num, '') == 1 then
    added = added + 1
    if attrs ~= '' then call('HSET', ap .. b, num, cols .. attrs) end
    push[#push + 1] = num
    if #push >= CHUNK then call('RPUSH', P .. ':ready', unpack(push)); push = {} end
  else
    dups = dups + 1
  end
end
if #push > 0 then call('RPUSH', P .. ':ready', unpack(push)) end
if added > 0 then call('HINCRBY', P .. ':stat', 'imported', added) end
return { added, dups }
