-- Fence a step execution against stale or duplicated messages of the same run.
--
-- KEYS[1]  {prefix}run:{run_id}   HASH run record (fields: status, cursor_step, cursor_attempt, ...)
-- ARGV[1]  step index of the message (0..5, the chain order)
-- ARGV[2]  attempt (Celery retries count) of the message
-- ARGV[3]  now (epoch s)
--
-- Returns 'missing' (no such run), 'terminal' (run finished or cancelled: drop the message),
-- 'stale' (a later step or attempt of this run already started: drop it) or 'ok' (cursor moved).
-- Equal (step, attempt) is 'ok': it is a redelivery of the message that crashed, and must re-run.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'succeeded' or status == 'failed' or status == 'cancelled' then return 'terminal' end
local step = tonumber(ARGV[1])
local attempt = tonumber(ARGV[2])
local cur_step = tonumber(redis.call('HGET', KEYS[1], 'cursor_step') or '-1')
local cur_attempt = tonumber(redis.call('HGET', KEYS[1], 'cursor_attempt') or '-1')
if step < cur_step or (step == cur_step and attempt < cur_attempt) then return 'stale' end
redis.call('HSET', KEYS[1], 'cursor_step', step, 'cursor_attempt', attempt, 'heartbeat', ARGV[3])
return 'ok'
