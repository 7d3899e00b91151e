-- Take or keep a lease (a partition's owner, a CDR archive's recorder).
-- KEYS: lease. ARGV: owner, ms. 1 if the lease is the owner's now.
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
