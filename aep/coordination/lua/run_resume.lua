-- run_resume.lua: restart a failed run at a step, with a new carrier (the fence drops every older message).
--
-- KEYS[1]  {prefix}run:{run_id} (and its long fields' hash, lib_run.lua)   KEYS[2] its timeline
-- KEYS[3]  its pinned events   KEYS[4] {prefix}carriers
-- ARGV[1]  step to resume at   ARGV[2] fields to forget (JSON list)   ARGV[3] '1': a new generation
--          (the step POSTs again, and spends quota under a new holder)   ARGV[4] who resumes
-- ARGV[5]  now (epoch s) from a test, or ''   ARGV[6] run id   ARGV[7] grace (s)   ARGV[8] ttl (s)
-- ARGV[9]  key prefix, for the status index (or '')
--
-- Returns {'ok', step, seq, gen} or {'not-failed', status} (only a failed run can be resumed).
--#include lib_quota
--#include lib_run
local now = server_now(ARGV[5])
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'failed' then return {'not-failed', status or 'missing'} end
lift(KEYS[1])  -- a record of the older layout: its fields to forget are where this layout keeps them
local forget = cjson.decode(ARGV[2])
for _, k in ipairs({'failure_kind', 'failure_step', 'error', 'wait_until', 'waiting_reason', 'wait_kind',
                    'wait_since', 'cancel_requested', 'blocker', 'aep_status'}) do
  forget[#forget + 1] = k
end
write_fields(KEYS[1], {}, forget)
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], 'gen', 1) end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'status', 'queued', 'step', ARGV[1], 'attempt', 0, 'errors', 0, 'carrier', 'woken',
  'updated_at', now, 'step_since', now)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[7]), ARGV[6])
index_status(ARGV[9], ARGV[6], KEYS[1], 'failed', 'queued', now, tonumber(ARGV[8]))
add_event(KEYS[1], KEYS[2], KEYS[3], {t = now, step = ARGV[1], event = 'resumed',
  detail = 'resumed at ' .. ARGV[1] .. ' by ' .. ARGV[4]}, '', true)
keep(tonumber(ARGV[8]), KEYS[1], long_of(KEYS[1]), KEYS[2], KEYS[3])
return {'ok', ARGV[1], seq, tonumber(redis.call('HGET', KEYS[1], 'gen'))}
