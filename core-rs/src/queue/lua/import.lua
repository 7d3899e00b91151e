#!lua
-- Add contacts to one partition: a contact is new when its number is not yet known to the
-- partition (HSETNX on its state bucket); new ones are appended to :ready in file order.
-- The attributes of this call's new contacts go into one string, :ap:<page> (page from :apseq),
-- one after the other; a contact's state is then "@page.offset.length" instead of "" (fresh).
-- KEYS[1] = partition base.  ARGV[1] = attribute-columns id ('' for none), then pairs:
--   number, attrs ('' for none)
-- Returns { added, duplicates }.
local P = KEYS[1]
local cols = ARGV[1] .. '\31'
local BUCKETS = @BUCKETS@
local CHUNK = 1000
local call = redis.call
local kp = P .. ':k:'
local push, page, parts = {}, nil, {}
local off = 0
local added, dups = 0, 0
for i = 2, #ARGV, 2 do
  local num, attrs = ARGV[i], ARGV[i + 1]
  local state, rec = '', nil
  if attrs ~= '' then
    page = page or call('INCR', P .. ':apseq')
    rec = cols .. attrs
    state = '@' .. page .. '.' .. off .. '.' .. #rec
  end
  if call('HSETNX', kp .. (num % BUCKETS), num, state) == 1 then
    added = added + 1
    if rec then
      parts[#parts + 1] = rec
      off = off + #rec
    end
    push[#push + 1] = num
    if #push >= CHUNK then call('RPUSH', P .. ':ready', unpack(push)); push = {} end
  else
    dups = dups + 1
  end
end
if #push > 0 then call('RPUSH', P .. ':ready', unpack(push)) end
if #parts > 0 then call('SET', P .. ':ap:' .. page, table.concat(parts)) end
if added > 0 then call('HINCRBY', P .. ':stat', 'imported', added) end
return { added, dups }
