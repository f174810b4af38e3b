-- run_leave.lua: an execution of a step ends: its ledger update, its events and the run's next carrier
-- (the successor, the same step again later, or none when the run ends), in one step.
--
-- KEYS[1]  {prefix}run:{run_id} (and its long fields' hash, lib_run.lua)   KEYS[2] its timeline
-- KEYS[3]  its pinned events   KEYS[4] {prefix}carriers
-- KEYS[5..] audience lock keys, released (if the run holds them) when the run ends
-- ARGV[1]  lease token of this execution   ARGV[2] the change (JSON, below)
-- ARGV[3]  now (epoch s) from a test, or ''    ARGV[4] run id    ARGV[5] key prefix
--
-- The change: {set = {field = string}, del = {field}, events = {{step, event, detail, pin, key}},
--   claims = {{kind, aep_id}}, settle = step name or '' (its quota slot is no longer pending),
--   status = 'running'|'waiting', next = {step, delay_s, publish, same_step} or absent,
--   finish = {status, failure_kind, failure_step, error} or absent, ttl_s, grace_s, holder,
--   metrics = {field = increment} (added to {prefix}metrics as HINCRBY would: aep/coordination/metrics.py),
--   observe = {key, value, size, ttl} or absent (a job's duration for adaptive polls: durations.py)}
-- `next.publish`: the caller publishes the wake-up now, so the carrier's deadline is now + grace;
-- otherwise the watchdog publishes it at now + delay_s. A status change moves the run in the status
-- index ({prefix}status:{status}); a new step records `step_since` (the step-duration metric).
--
-- The record (both hashes) and its two lists expire ttl_s after the run ends. While it is open they are given ttl_s
-- again whenever less than 90 % of it is left, or less than the next carrier's delay plus 10 % of it
-- (so they outlive every wait), or the record has no TTL, or this created a list; otherwise the TTL
-- they have is kept (it is then at least 90 % of ttl_s), which spares four EXPIREs per step.
--
-- Returns {'lost'} when this execution no longer holds the run (its lease ran out and another took
-- over, or the run was cancelled): nothing is written. Else {'ok', seq, conflict1, owner1, …} where
-- seq is the next carrier's (0 when the run ended) and the conflicts are claims already held by another run.
--#include lib_quota
--#include lib_run
local now = server_now(ARGV[3])
local c = cjson.decode(ARGV[2])
local settle = c['settle']
if settle == '' then settle = nil end
-- Everything this reads of the record, in one read of each hash (the long one only for the lines an
-- end leaves and the slots a settle settles); `field(k)` is then a field as the writes so far left it.
-- The writes are gathered in `final` (field -> value, false once deleted) in the order they apply,
-- and land as one HSET and one HDEL per hash at the end.
local read = {'lease', 'status', 'seq', 'attempt', 'last_event', 'created_at', 'gen'}
local values = redis.call('HMGET', KEYS[1], unpack(read))
if values[1] ~= ARGV[1] then return {'lost'} end
local rec = {}
for i, k in ipairs(read) do rec[k] = values[i] end
local long_read = {}
if c['finish'] then long_read[#long_read + 1] = 'lines' end
if settle then long_read[#long_read + 1] = LONG_PREFIX .. settle end
if #long_read > 0 then
  local long_values = redis.call('HMGET', long_of(KEYS[1]), unpack(long_read))
  for i, k in ipairs(long_read) do rec[k] = long_values[i] end
end
local final, order = {}, {}
local function put(k, v)
  if final[k] == nil then order[#order + 1] = k end
  final[k] = v
end
local function field(k)
  local v = final[k]
  if v == nil then return rec[k] end
  return v
end
local old_status = rec['status'] or nil
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

put('updated_at', now)
for k, v in pairs(c['set'] or {}) do put(k, v) end
for _, k in ipairs(c['del'] or {}) do put(k, false) end

if settle then
  local spent = field(LONG_PREFIX .. settle)
  if spent then
    local s = cjson.decode(spent)
    quota_settle(s['keys'], s['holder'])
  end
end

local new_list = false
for _, e in ipairs(c['events'] or {}) do
  local written, created = append_event(KEYS[2], KEYS[3],
    {t = now, step = e['step'], event = e['event'], detail = e['detail']}, e['key'], e['pin'], field('last_event'))
  if written ~= nil and (written ~= '' or field('last_event')) then
    put('last_event', written ~= '' and written or false)  -- no coalescing key: the field is deleted
  end
  if created then new_list = true end
end

local counts = {}
for k, v in pairs(c['metrics'] or {}) do counts[k] = v end

local lock_keys = {}
for i = 5, #KEYS do lock_keys[#lock_keys + 1] = KEYS[i] end

local function seq_plus_one(k)
  return string.format('%d', tonumber(field(k) or '0') + 1)
end

local fin = c['finish']
local refresh = true
if fin then
  put('status', fin['status']); put('carrier', '')
  for _, k in ipairs({'failure_kind', 'failure_step', 'error'}) do
    if fin[k] and fin[k] ~= '' then put(k, fin[k]) end
  end
  for _, k in ipairs({'lease', 'lease_until', 'wait_until', 'waiting_reason', 'wait_kind', 'wait_since'}) do
    put(k, false)
  end
  put('seq', seq_plus_one('seq'))
  redis.call('ZREM', KEYS[4], run_id)
  release_locks(lock_keys, run_id)
  leave_lines(KEYS[1], holder_of(KEYS[1], run_id, field('gen') or false), field('lines') or false)
  index_status(ARGV[5], run_id, KEYS[1], old_status, fin['status'], now, ttl, field('created_at') or false, counts)
else
  local nxt = c['next']
  local seq = tonumber(field('seq') or '0') + 1
  put('seq', string.format('%d', seq))
  out[2] = seq
  local due = now + tonumber(nxt['delay_s'])
  local carrier = 'due'
  if nxt['publish'] then due = now + tonumber(c['grace_s']); carrier = 'woken' end
  put('step', nxt['step']); put('status', c['status']); put('carrier', carrier)
  if not nxt['same_step'] then put('step_since', now) end
  index_status(ARGV[5], run_id, KEYS[1], old_status, c['status'], now, ttl, field('created_at') or false)
  put('lease', false); put('lease_until', false)
  if nxt['same_step'] then
    put('attempt', seq_plus_one('attempt'))
  else
    put('attempt', 0); put('errors', 0)
  end
  redis.call('ZADD', KEYS[4], due, run_id)
  -- The open run's TTL (see the header): TTL is one command where EXPIRE was three. A TTL above ttl
  -- (ttl_s was lowered) is brought down to it, as before.
  if not new_list then
    local left = redis.call('TTL', KEYS[1])
    local slack = ttl / 10
    refresh = left < ttl - slack or left > ttl or left < (due - now) + slack
  end
end

add_metrics(ARGV[5], counts)

-- A finished AEP job's duration for the adaptive polls' summary (aep/coordination/durations.py): the
-- newest first, at most `size`, kept `ttl` seconds after the last one. A key that is not a list (written
-- by hand, or by something else) is left alone: the summary only speeds polls up, and a WRONGTYPE here
-- would fail the step after the writes above, again on every retry.
local ob = c['observe']
if ob then
  local t = redis.call('TYPE', ob['key'])['ok']
  if t ~= 'list' and t ~= 'none' then ob = nil end
end
if ob then
  local size = tonumber(ob['size'])
  if redis.call('LPUSH', ob['key'], ob['value']) > size then redis.call('LTRIM', ob['key'], 0, size - 1) end
  redis.call('EXPIRE', ob['key'], tonumber(ob['ttl']))
end

local fields, gone = {}, {}
for _, k in ipairs(order) do
  local v = final[k]
  if v == false then
    gone[#gone + 1] = k
  else
    fields[#fields + 1] = k; fields[#fields + 1] = v
  end
end
write_fields(KEYS[1], fields, gone)
if refresh then keep(ttl, KEYS[1], long_of(KEYS[1]), KEYS[2], KEYS[3]) end
return out
