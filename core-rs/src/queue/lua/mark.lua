#!lua
-- Mark claimed contacts of one partition: 'd' their INVITE is leaving (an attempt, if the
-- dialer dies from now on), 'a' their call was answered (final, if the dialer dies from now on).
-- KEYS[1] = partition base. ARGV[1] = 'd' | 'a', then number, token pairs.
-- A mark is for the live lease it names (:lh token) and lives in :dm (number -> "token|kind",
-- maybe followed by "|" and what the dialler keeps with it)
-- until the contact is completed (complete.lua) or its lease expires (claim.lua reads it then).
-- An answered mark is never turned back into a dialled one.
-- Returns how many were marked.
local P = KEYS[1]
local kind = ARGV[1]
local LH, DM = P .. ':lh', P .. ':dm'
local marked = 0
for i = 2, #ARGV, 2 do
  local num, token = ARGV[i], ARGV[i + 1]
  local lease = redis.call('HGET', LH, num)
  if lease and string.match(lease, '^(%d+)|') == token then
    local mt, mk = string.match(redis.call('HGET', DM, num) or '', '^(%d+)|(%a)')
    if kind == 'a' or mt ~= token or mk ~= 'a' then
      redis.call('HSET', DM, num, token .. '|' .. kind)
      marked = marked + 1
    end
  end
end
return marked
