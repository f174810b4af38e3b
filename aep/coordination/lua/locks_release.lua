-- locks_release.lua: delete the audience locks that `owner` holds, and only those.
--
-- Key layout (see aep/locks.py):
--   {prefix}lock:audience:{audience}  STRING  owner (a run id), with a PX expiry
--
-- KEYS[1..n]  one lock key per audience
-- ARGV[1]     owner
--
-- A key that expired and was taken by another owner is left alone. Returns the number deleted.
local owner = ARGV[1]
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == owner then
    released = released + redis.call('DEL', key)
  end
end
return released
