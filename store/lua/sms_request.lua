-- Queue a subscriber's one SMS of a campaign: only if none was ever requested.
-- KEYS: SMS states, outbox. ARGV: number, text, sender, now. 1 if queued, 0 if requested before.
if redis.call('HSETNX', KEYS[1], ARGV[1], 'queued||' .. ARGV[4]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'number', ARGV[1], 'text', ARGV[2], 'sender', ARGV[3])
return 1
