-- Set a run's non-terminal status (queued | running | waiting) unless the run already ended.
--
-- KEYS[1]  {prefix}run:{run_id}   HASH run record
-- ARGV[1]  the new status
--
-- A step that was already executing when an operator cancelled the run must not write "running" back
-- over "cancelled". Returns 1 if set, 0 if the run is terminal.
local cur = redis.call('HGET', KEYS[1], 'status')
if cur == 'succeeded' or cur == 'failed' or cur == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
return 1
