-- Let a lease go if it is still the owner's. KEYS: lease. ARGV: owner. 1 if deleted.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
