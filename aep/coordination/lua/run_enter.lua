-- run_enter.lua: one execution of a step takes the run (the fence and the run lock in one step).
--
-- KEYS[1]  {prefix}run:{run_id}   KEYS[2] {prefix}carriers   KEYS[3] its timeline   KEYS[4] its pinned events
-- ARGV[1]  step name of the message        ARGV[2] carrier seq of the message
-- ARGV[3]  lease token of this execution   ARGV[4] lease (s): the step's hard time limit plus a slack
-- ARGV[5]  now (epoch s) from a test, or ''    ARGV[6] run id
-- ARGV[7]  key prefix, for the status index (lib_run.lua index_status), or '' to leave it alone
--
-- A message runs only if it carries the run's current step and seq, and no live execution holds
-- the run. Returns {'ok', now, field1, value1, …} (the whole record), or {verdict, …} to drop it:
-- 'missing', 'layout' (written by another ledger layout), 'terminal', 'stale' (a later carrier
-- exists: step, seq) or 'busy' (another execution holds the lease until the given time).
-- On 'ok' the carrier's deadline becomes the lease's end: if this execution dies, the watchdog
-- publishes the step again then.
--#include lib_quota
--#include lib_run
local now = server_now(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'status', 'step', 'seq', 'carrier', 'lease_until', 'v', 'attempt', 'errors')
if not h[1] then return {'missing'} end
if h[6] ~= LAYOUT then return {'layout'} end
if is_terminal(h[1]) then
  redis.call('ZREM', KEYS[2], ARGV[6])
  return {'terminal', h[1]}
end
if h[2] ~= ARGV[1] or tonumber(h[3]) ~= tonumber(ARGV[2]) then return {'stale', h[2], h[3]} end
if h[4] == 'running' and tonumber(h[5] or '0') > now then return {'busy', h[5]} end
local lease_until = now + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'carrier', 'running', 'lease', ARGV[3], 'lease_until', lease_until)
if h[1] == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running')
  index_status(ARGV[7], ARGV[6], KEYS[1], 'queued', 'running', now, 0)
end
redis.call('ZADD', KEYS[2], lease_until, ARGV[6])
if h[7] == '0' and h[8] == '0' then
  add_event(KEYS[1], KEYS[3], KEYS[4], {t = now, step = ARGV[1], event = 'started', detail = ''}, '', false)
end
local out = {'ok', tostring(now)}
for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do out[#out + 1] = v end
return out
