-- Move a campaign from one of the allowed states to another, with its event.
-- KEYS: campaign record, events. ARGV: allowed (comma-separated), to, now, actor,
-- "not-creator" when the actor may not be the campaign's creator (else ""), event JSON, kept,
-- the actor's holder (the person: compared with the creator's, or the label for a campaign
-- stored before holders were).
-- Returns {status, state, revision}: ok | missing | conflict | forbidden.
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing', '', 0} end
local ok = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == st then ok = true end end
if not ok then return {'conflict', st, 0} end
if ARGV[5] == 'not-creator' then
  local holder = redis.call('HGET', KEYS[1], 'created_holder')
  if (holder and holder == ARGV[8]) or (not holder and redis.call('HGET', KEYS[1], 'created_by') == ARGV[4]) then
    return {'forbidden', st, 0}
  end
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated_at', ARGV[3])
if ARGV[2] == 'approved' then redis.call('HSET', KEYS[1], 'approved_by', ARGV[4]) end
local rev = redis.call('HINCRBY', KEYS[1], 'revision', 1)
local ev = cjson.decode(ARGV[6])
ev['from'] = st
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'type', 'state', 'data', cjson.encode(ev))
return {'ok', st, rev}
