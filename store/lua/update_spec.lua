-- Replace a campaign's spec if its revision is still the one the new spec was merged from.
-- KEYS: campaign record, events. ARGV: expected revision, spec JSON, now, event type, event JSON,
-- kept. Returns {status, revision}: ok | missing | moved.
local rev = redis.call('HGET', KEYS[1], 'revision')
if not rev then return {'missing', 0} end
if rev ~= ARGV[1] then return {'moved', tonumber(rev)} end
redis.call('HSET', KEYS[1], 'spec', ARGV[2], 'updated_at', ARGV[3])
local new = redis.call('HINCRBY', KEYS[1], 'revision', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', ARGV[4], 'data', ARGV[5])
return {'ok', new}
