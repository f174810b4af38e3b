-- locks_refresh.lua: extend the audience locks that `owner` still holds.
--
-- Key layout (see aep/locks.py):
--   {prefix}lock:audience:{audience}  STRING  owner (a run id), with a PX expiry
--
-- KEYS[1..n]  one lock key per audience
-- ARGV[1]     owner
-- ARGV[2]     ttl_ms
--
-- Never takes a key that is free or held by another owner. Returns the number of keys
-- that were NOT held by `owner` (0 means every lock is still ours).
local owner, ttl_ms = ARGV[1], ARGV[2]
local lost = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == owner then
    redis.call('PEXPIRE', key, ttl_ms)
  else
    lost = lost + 1
  end
end
return lost
