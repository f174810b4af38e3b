-- run_create.lua: record a new run and its first carrier in one step (the producer's only write).
--
-- KEYS[1]  {prefix}idem:{key}, or any key when ARGV[6] is '0' (unused then)
-- KEYS[2]  {prefix}run:{run_id} (and its long fields' hash, lib_run.lua)   KEYS[3] its timeline
-- KEYS[4]  its pinned events
-- KEYS[5]  {prefix}runs (ZSET run id -> created_at)             KEYS[6] {prefix}carriers
-- ARGV[1]  run id          ARGV[2] fields (JSON object of strings: request, started_by, step, …)
-- ARGV[3]  the created event (JSON)     ARGV[4] ttl (s) of the record, its key and its index entry
-- ARGV[5]  grace (s): the carrier's deadline, in case the wake-up message is lost
-- ARGV[6]  '1' when there is an idempotency key         ARGV[7] now (epoch s) from a test, or ''
-- ARGV[8]  the key prefix (to read the record an idempotency key points at)
-- ARGV[9]  admission (JSON): {holder, priority (0 schedules, 1 others), refuse_unless_now, lines = {{line, committed, limit,
--          window_end, window_s, yearly = {committed, limit, window_end} or absent}}}: the quota lines
--          the run joins (one per quota it will spend), and the current windows' committed sets
--
-- Returns {verdict, run_id, status, step, seq, gen, admission JSON}; verdict is 'created', 'existing'
-- (the key's run, untouched), 'relaunched' (the key's run was open with no carrier: it gets one,
-- exactly once) or 'refused' (refuse_unless_now and a quota would make it wait: nothing written).
--
-- The admission is a forecast from the ledger, for each quota: the run spends in the current window
-- ('now') when the slots still free cover it and every run ahead of it in line, else it waits for the
-- window that opens at `opens_at`, at `place` in that window's line.
--#include lib_quota
--#include lib_run
local now = server_now(ARGV[7])
local ttl = tonumber(ARGV[4])
local grace = tonumber(ARGV[5])

if ARGV[6] == '1' then
  local existing = redis.call('GET', KEYS[1])
  if existing then
    local rk = ARGV[8] .. 'run:' .. existing
    local h = redis.call('HMGET', rk, 'status', 'step', 'seq', 'gen', 'v')
    if h[1] then
      if is_terminal(h[1]) or (h[5] ~= LAYOUT and h[5] ~= LIFTS_FROM) or redis.call('ZSCORE', KEYS[6], existing) then
        return {'existing', existing, h[1], h[2] or '', tonumber(h[3] or '0'), tonumber(h[4] or '0'), ''}
      end
      local seq = redis.call('HINCRBY', rk, 'seq', 1)
      redis.call('HSET', rk, 'carrier', 'woken', 'updated_at', now)
      redis.call('ZADD', KEYS[6], now + grace, existing)
      local tl, pin = ARGV[8] .. 'run:' .. existing .. ':timeline', ARGV[8] .. 'run:' .. existing .. ':pinned'
      add_event(rk, tl, pin, {t = now, step = h[2], event = 'relaunched',
        detail = 'the run had no carrier; the same idempotency key relaunched it'}, '', true)
      return {'relaunched', existing, h[1], h[2], seq, tonumber(h[4] or '0'), ''}
    end
    -- The key outlived its record (both have a TTL): the key is free again.
  end
end

local adm = cjson.decode(ARGV[9])
local score = tonumber(adm['priority'] or 1) * 1e11 + now   -- schedules first, then first come
local forecast = {verdict = 'now', opens_at = 0, place = 0, quotas = {}}
local scores = {}
for _, l in ipairs(adm['lines'] or {}) do
  redis.call('ZREMRANGEBYSCORE', l['line'], 0, now - ttl)                 -- runs long gone: told 'now' and schedules
  redis.call('ZREMRANGEBYSCORE', l['line'], 1e11, 1e11 + now - ttl)       -- ... and the others
  -- All 17 digits: Lua's own number-to-text keeps 14, which near 1e11 rounds the score to 10 ms and
  -- would leave a run admitted milliseconds earlier out of the count.
  local ahead = redis.call('ZCOUNT', l['line'], '-inf', '(' .. string.format('%.17g', score))
  local used = redis.call('SCARD', l['committed'])
  local limit = tonumber(l['limit'])
  local q = {quota = l['name'], used = used, limit = limit, ahead = ahead, verdict = 'now', opens_at = 0, place = 0}
  if limit <= 0 then
    q['verdict'] = 'never'
  elseif ahead >= limit - used then
    local behind = ahead - math.max(0, limit - used)
    local k = math.floor(behind / limit)
    q['verdict'] = 'waits'
    q['opens_at'] = tonumber(l['window_end']) + k * tonumber(l['window_s'])
    q['place'] = behind % limit + 1
  end
  local y = l['yearly']
  if y and q['verdict'] == 'now' and redis.call('SCARD', y['committed']) >= tonumber(y['limit']) then
    q['verdict'] = 'waits'
    q['opens_at'] = tonumber(y['window_end'])
    q['place'] = ahead + 1
  end
  -- A holder told 'now' keeps that place: it ranks with the schedules (by time), so a schedule
  -- admitted after it is served after it, and before the producers still waiting.
  scores[#scores + 1] = (q['verdict'] == 'now') and now or score
  forecast['quotas'][#forecast['quotas'] + 1] = q
  if q['verdict'] == 'never' then
    forecast['verdict'] = 'never'
  elseif q['verdict'] == 'waits' and forecast['verdict'] ~= 'never' then
    forecast['verdict'] = 'waits'
    if q['opens_at'] > forecast['opens_at'] then
      forecast['opens_at'] = q['opens_at']
      forecast['place'] = q['place']
    end
  end
end
if adm['refuse_unless_now'] and forecast['verdict'] ~= 'now' then
  return {'refused', ARGV[1], 'queued', '', 0, 0, cjson.encode(forecast)}
end

-- The record is written by one HSET per hash: its fields, then the lines it joined (later fields win,
-- as separate writes in that order would). Fields that would be empty are left out.
local fields = cjson.decode(ARGV[2])
local flat = {}
for k, v in pairs(fields) do flat[#flat + 1] = k; flat[#flat + 1] = v end
redis.call('ZADD', KEYS[6], now + grace, ARGV[1])
local lines = {}
for i, l in ipairs(adm['lines'] or {}) do
  redis.call('ZADD', l['line'], scores[i], adm['holder'])
  lines[#lines + 1] = l['line']
end
if #lines > 0 then flat[#flat + 1] = 'lines'; flat[#flat + 1] = cjson.encode(lines) end
local ev = cjson.decode(ARGV[3])
ev['t'] = now
append_event(KEYS[3], KEYS[4], ev, '', true, false)  -- no coalescing key: no last_event field
write_fields(KEYS[2], {'v', LAYOUT, 'status', 'queued', 'seq', 1, 'gen', 0, 'attempt', 0, 'errors', 0,
  'carrier', 'woken', 'created_at', now, 'updated_at', now, 'step_since', now, unpack(flat)}, {})
redis.call('ZADD', KEYS[5], now, ARGV[1])
index_status(ARGV[8], ARGV[1], KEYS[2], nil, 'queued', now, ttl, fields['created_at'] or now)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - ttl)
keep(ttl, KEYS[2], long_of(KEYS[2]), KEYS[3])  -- the pinned list (KEYS[4]) is written only once the timeline drops a pinned event
if ARGV[6] == '1' then redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl) end
return {'created', ARGV[1], 'queued', fields['step'], 1, 0, cjson.encode(forecast)}
