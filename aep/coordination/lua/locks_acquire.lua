-- locks_acquire.lua: take every audience lock for `owner`, or none of them.
--
-- Key layout (see aep/locks.py):
--   {prefix}lock:audience:{audience}  STRING  owner (a run id), with a PX expiry
--
-- KEYS[1..n]  one lock key per audience
-- ARGV[1]     owner
-- ARGV[2]     ttl_ms
--
-- Re-entrant: keys already held by `owner` count as free, and all TTLs are reset.
-- Returns {} on success, else a flat list {i1, owner1, i2, owner2, ...} of the 1-based
-- KEYS indexes held by someone else, and nothing is written.
local owner, ttl_ms = ARGV[1], ARGV[2]
local conflicts = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if current and current ~= owner then
    table.insert(conflicts, i)
    table.insert(conflicts, current)
  end
end
if #conflicts > 0 then
  return conflicts
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, owner, 'PX', ttl_ms)
end
return conflicts
