-- run_cancel.lua: cancel a run. Nothing is POSTed for it once this has returned 'cancelled'.
--
-- KEYS[1]  {prefix}run:{run_id} (and its long fields' hash, lib_run.lua)   KEYS[2] its timeline
-- KEYS[3]  its pinned events   KEYS[4] {prefix}carriers
-- KEYS[5..] audience lock keys, released if the run holds them
-- ARGV[1]  who cancels (e.g. 'cli', 'api:ops-key (ops)')   ARGV[2] now (epoch s) from a test, or ''
-- ARGV[3]  run id   ARGV[4] ttl (s)   ARGV[5] key prefix, for the status index (or '')
--
-- The first call marks the run cancel-requested, so no execution can record a new POST intent. If
-- an execution holds the run while its step's intent is unresolved (a POST may be in flight), it
-- returns {'wait', lease_until}: call again until that execution has ended or its lease ran out, so
-- the POST's answer is recorded (and its job can be cancelled at AEP) before the run ends.
-- Returns {'missing'}, {'terminal', status} or {'cancelled', step, unresolved intent '1'|'0'}.
--#include lib_quota
--#include lib_run
local now = server_now(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'status', 'step', 'carrier', 'lease_until', 'cancel_requested')
if not h[1] then return {'missing'} end
if is_terminal(h[1]) then return {'terminal', h[1]} end
if not h[5] then redis.call('HSET', KEYS[1], 'cancel_requested', ARGV[1]) end
local unresolved = redis.call('HEXISTS', KEYS[1], 'intent:' .. h[2]) == 1
local live = h[3] == 'running' and tonumber(h[4] or '0') > now
if live and unresolved then return {'wait', h[4]} end
-- A record of the older layout: its lines are then where leave_lines reads them (an execution that
-- still holds it can no longer leave: its lease is deleted below).
lift(KEYS[1])
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'carrier', '', 'updated_at', now)
redis.call('HDEL', KEYS[1], 'lease', 'lease_until', 'wait_until', 'waiting_reason', 'wait_kind', 'wait_since')
redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('ZREM', KEYS[4], ARGV[3])
index_status(ARGV[5], ARGV[3], KEYS[1], h[1], 'cancelled', now, tonumber(ARGV[4]))
local lock_keys = {}
for i = 5, #KEYS do lock_keys[#lock_keys + 1] = KEYS[i] end
release_locks(lock_keys, ARGV[3])
leave_lines(KEYS[1], holder_of(KEYS[1], ARGV[3]))
local detail = 'cancelled by ' .. ARGV[1]
if unresolved then detail = detail .. '; the outcome of its last POST is unknown, so its AEP job may exist' end
add_event(KEYS[1], KEYS[2], KEYS[3], {t = now, step = h[2], event = 'cancelled', detail = detail}, '', true)
keep(tonumber(ARGV[4]), KEYS[1], long_of(KEYS[1]), KEYS[2], KEYS[3])
local u = '0'
if unresolved then u = '1' end
return {'cancelled', h[2], u}
