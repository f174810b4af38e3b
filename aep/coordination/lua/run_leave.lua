-- run_leave.lua: an execution of a step ends: its ledger update, its events and the run's next carrier
-- (the successor, the same step again later, or none when the run ends), in one step.
--
-- KEYS[1]  {prefix}run:{run_id}   KEYS[2] its timeline   KEYS[3] its pinned events   KEYS[4] {prefix}carriers
-- KEYS[5..] audience lock keys, released (if the run holds them) when the run ends
-- ARGV[1]  lease token of this execution   ARGV[2] the change (JSON, below)
-- ARGV[3]  now (epoch s) from a test, or ''    ARGV[4] run id    ARGV[5] key prefix
--
-- The change: {set = {field = string}, del = {field}, events = {{step, event, detail, pin, key}},
--   claims = {{kind, aep_id}}, settle = step name or '' (its quota slot is no longer pending),
--   status = 'running'|'waiting', next = {step, delay_s, publish, same_step} or absent,
--   finish = {status, failure_kind, failure_step, error} or absent, ttl_s, grace_s, holder,
--   metrics = {field = increment} (HINCRBY on {prefix}metrics: aep/coordination/metrics.py)}
-- `next.publish`: the caller publishes the wake-up now, so the carrier's deadline is now + grace;
-- otherwise the watchdog publishes it at now + delay_s. A status change moves the run in the status
-- index ({prefix}status:{status}); a new step records `step_since` (the step-duration metric).
--
-- Returns {'lost'} when this execution no longer holds the run (its lease ran out and another took
-- over, or the run was cancelled): nothing is written. Else {'ok', seq, conflict1, owner1, …} where
-- the conflicts are claims already held by another run.
--#include lib_quota
--#include lib_run
local now = server_now(ARGV[3])
local held = redis.call('HMGET', KEYS[1], 'lease', 'status')
if held[1] ~= ARGV[1] then return {'lost'} end
local old_status = held[2] or nil
local c = cjson.decode(ARGV[2])
local run_id = ARGV[4]
local ttl = tonumber(c['ttl_s'])

local out = {'ok', 0}
for _, claim in ipairs(c['claims'] or {}) do
  local key = ARGV[5] .. 'owner:' .. claim[1] .. ':' .. claim[2]
  if not redis.call('SET', key, run_id, 'NX', 'EX', ttl) then
    local owner = redis.call('GET', key)
    if owner ~= run_id then out[#out + 1] = claim[2]; out[#out + 1] = owner end
  end
end

local set = {'updated_at', now}
for k, v in pairs(c['set'] or {}) do set[#set + 1] = k; set[#set + 1] = v end
redis.call('HSET', KEYS[1], unpack(set))
local del = c['del'] or {}
if #del > 0 then redis.call('HDEL', KEYS[1], unpack(del)) end

if c['settle'] and c['settle'] ~= '' then
  local spent = redis.call('HGET', KEYS[1], 'spent:' .. c['settle'])
  if spent then
    local s = cjson.decode(spent)
    quota_settle(s['keys'], s['holder'])
  end
end

for _, e in ipairs(c['events'] or {}) do
  add_event(KEYS[1], KEYS[2], KEYS[3], {t = now, step = e['step'], event = e['event'], detail = e['detail']},
    e['key'], e['pin'])
end

add_metrics(ARGV[5], c['metrics'])

local lock_keys = {}
for i = 5, #KEYS do lock_keys[#lock_keys + 1] = KEYS[i] end

local fin = c['finish']
if fin then
  redis.call('HSET', KEYS[1], 'status', fin['status'], 'carrier', '')
  for _, k in ipairs({'failure_kind', 'failure_step', 'error'}) do
    if fin[k] and fin[k] ~= '' then redis.call('HSET', KEYS[1], k, fin[k]) end
  end
  redis.call('HDEL', KEYS[1], 'lease', 'lease_until', 'wait_until', 'waiting_reason', 'wait_kind', 'wait_since')
  redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('ZREM', KEYS[4], run_id)
  release_locks(lock_keys, run_id)
  leave_lines(KEYS[1], holder_of(KEYS[1], run_id))
  index_status(ARGV[5], run_id, KEYS[1], old_status, fin['status'], now, ttl)
else
  local nxt = c['next']
  out[2] = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  local due = now + tonumber(nxt['delay_s'])
  local carrier = 'due'
  if nxt['publish'] then due = now + tonumber(c['grace_s']); carrier = 'woken' end
  if nxt['same_step'] then
    redis.call('HSET', KEYS[1], 'step', nxt['step'], 'status', c['status'], 'carrier', carrier)
  else
    redis.call('HSET', KEYS[1], 'step', nxt['step'], 'status', c['status'], 'carrier', carrier, 'step_since', now)
  end
  index_status(ARGV[5], run_id, KEYS[1], old_status, c['status'], now, ttl)
  redis.call('HDEL', KEYS[1], 'lease', 'lease_until')
  if nxt['same_step'] then
    redis.call('HINCRBY', KEYS[1], 'attempt', 1)
  else
    redis.call('HSET', KEYS[1], 'attempt', 0, 'errors', 0)
  end
  redis.call('ZADD', KEYS[4], due, run_id)
end
keep(ttl, KEYS[1], KEYS[2], KEYS[3])
return out
