-- run_enter.lua: one execution of a step takes the run (the fence and the run lock in one step).
--
-- KEYS[1]  {prefix}run:{run_id} (and its long fields' hash, lib_run.lua)   KEYS[2] {prefix}carriers
-- KEYS[3]  its timeline   KEYS[4] its pinned events
-- ARGV[1]  step name of the message        ARGV[2] carrier seq of the message
-- ARGV[3]  lease token of this execution   ARGV[4] lease (s): the step's hard time limit plus a slack
-- ARGV[5]  now (epoch s) from a test, or ''    ARGV[6] run id
-- ARGV[7]  key prefix, for the status index (lib_run.lua index_status), or '' to leave it alone
--
-- A message runs only if it carries the run's current step and seq, and no live execution holds
-- the run. Returns {'ok', now, field1, value1, …} (the whole record, both hashes), or {verdict, …} to
-- drop it: 'missing', 'layout' (written by another ledger layout: one of LIFTS_FROM is lifted to
-- LAYOUT here first), 'terminal', 'stale' (a later carrier
-- exists: step, seq) or 'busy' (another execution holds the lease until the given time).
-- On 'ok' the carrier's deadline becomes the lease's end: if this execution dies, the watchdog
-- publishes the step again then. The record is read once (HGETALL) and the fields this writes are
-- patched into the reply, so the reply is the record as it is after this step.
--#include lib_quota
--#include lib_run
local now = server_now(ARGV[5])
local raw, h
local function read()
  raw = redis.call('HGETALL', KEYS[1])
  h = {}
  for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
end
read()
if not h['status'] then return {'missing'} end
if h['v'] ~= LAYOUT then
  -- An execution of the older release holding the run leaves it with its own script, which reads the
  -- older layout: lifted once it has (or its lease ran out).
  if h['v'] == LIFTS_FROM and h['carrier'] == 'running' and tonumber(h['lease_until'] or '0') > now then
    return {'busy', h['lease_until']}
  end
  if not lift(KEYS[1]) then return {'layout'} end
  read()
end
if is_terminal(h['status']) then
  redis.call('ZREM', KEYS[2], ARGV[6])
  return {'terminal', h['status']}
end
if h['step'] ~= ARGV[1] or tonumber(h['seq']) ~= tonumber(ARGV[2]) then
  return {'stale', h['step'] or false, h['seq'] or false}
end
if h['carrier'] == 'running' and tonumber(h['lease_until'] or '0') > now then return {'busy', h['lease_until']} end
local lease_until = now + tonumber(ARGV[4])
-- The record after this step's writes, returned without reading it again: each written field's text
-- (lease_until is written as the very text it is returned as: Redis versions differ in how they turn
-- a Lua number into text).
local lease_text = string.format('%.17g', lease_until)
local wrote = {'carrier', 'running', 'lease', ARGV[3], 'lease_until', lease_text}
local texts = {carrier = 'running', lease = ARGV[3], lease_until = lease_text}
if h['status'] == 'queued' then
  wrote[#wrote + 1] = 'status'; wrote[#wrote + 1] = 'running'
  texts['status'] = 'running'
end
if h['attempt'] == '0' and h['errors'] == '0' then
  append_event(KEYS[3], KEYS[4], {t = now, step = ARGV[1], event = 'started', detail = ''}, '', false, false)
  if h['last_event'] and h['last_event'] ~= '' then  -- the event has no coalescing key (absent stays absent)
    wrote[#wrote + 1] = 'last_event'; wrote[#wrote + 1] = ''
    texts['last_event'] = ''
  end
end
redis.call('HSET', KEYS[1], unpack(wrote))
if h['status'] == 'queued' then
  index_status(ARGV[7], ARGV[6], KEYS[1], 'queued', 'running', now, 0, h['created_at'] or false)
end
redis.call('ZADD', KEYS[2], lease_until, ARGV[6])
local out = {'ok', tostring(now)}
for i = 1, #raw, 2 do
  local k = raw[i]
  out[#out + 1] = k
  if texts[k] then out[#out + 1] = texts[k]; texts[k] = nil else out[#out + 1] = raw[i + 1] end
end
for i = 1, #wrote, 2 do
  local k = wrote[i]
  if texts[k] then out[#out + 1] = k; out[#out + 1] = texts[k] end
end
for _, v in ipairs(redis.call('HGETALL', long_of(KEYS[1]))) do out[#out + 1] = v end
return out
