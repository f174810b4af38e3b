-- lib_run.lua: helpers shared by the run-ledger scripts (included; see aep/coordination/runs.py).
--
-- Run record: HASH {prefix}run:{run_id}, and its long fields (LONG and LONG_PREFIX .. step) in HASH
-- {prefix}run:{run_id}:long, so the record itself stays a listpack; timeline LIST
-- {prefix}run:{run_id}:timeline (trimmed); pinned LIST {prefix}run:{run_id}:pinned (never trimmed:
-- the pinned events the timeline dropped). Events are JSON objects {t, step, event, detail[, n][, actor][, pin]}.
--#const RUN_CONSTS

local function is_terminal(status)
  return status ~= false and status ~= nil and TERMINAL[status] == true
end

local function is_long(field)
  return LONG[field] == true or string.sub(field, 1, #LONG_PREFIX) == LONG_PREFIX
end

local function long_of(run_key)
  return run_key .. ':long'
end

-- Bring a record of layout LIFTS_FROM (one hash) up to LAYOUT: its long fields move to the long hash
-- (which holds nothing else then), and the record is written afresh, so it takes the compact encoding again (a hash never converts back
-- by itself), with its TTL. Returns whether it did (false: the record is of another layout, or gone).
local function lift(run_key)
  if redis.call('HGET', run_key, 'v') ~= LIFTS_FROM then return false end
  local raw = redis.call('HGETALL', run_key)
  local short, long = {'v', LAYOUT}, {}
  for i = 1, #raw, 2 do
    local k = raw[i]
    if is_long(k) then
      long[#long + 1] = k; long[#long + 1] = raw[i + 1]
    elseif k ~= 'v' then
      short[#short + 1] = k; short[#short + 1] = raw[i + 1]
    end
  end
  local ttl = redis.call('PTTL', run_key)
  redis.call('DEL', run_key, long_of(run_key))
  redis.call('HSET', run_key, unpack(short))
  if #long > 0 then redis.call('HSET', long_of(run_key), unpack(long)) end
  if ttl > 0 then
    redis.call('PEXPIRE', run_key, ttl)
    if #long > 0 then redis.call('PEXPIRE', long_of(run_key), ttl) end
  end
  return true
end

-- HSET and HDEL of record fields, each to the hash it lives in. `set`: a flat {field, value, …}
-- list; `gone`: field names.
local function write_fields(run_key, set, gone)
  local short, long, short_gone, long_gone = {}, {}, {}, {}
  for i = 1, #set, 2 do
    local into = short
    if is_long(set[i]) then into = long end
    into[#into + 1] = set[i]; into[#into + 1] = set[i + 1]
  end
  for _, k in ipairs(gone) do
    if is_long(k) then long_gone[#long_gone + 1] = k else short_gone[#short_gone + 1] = k end
  end
  if #short > 0 then redis.call('HSET', run_key, unpack(short)) end
  if #long > 0 then redis.call('HSET', long_of(run_key), unpack(long)) end
  if #short_gone > 0 then redis.call('HDEL', run_key, unpack(short_gone)) end
  if #long_gone > 0 then redis.call('HDEL', long_of(run_key), unpack(long_gone)) end
end

-- Append an event to the lists alone: `last` is the record's last_event. Returns nil when the event
-- replaced the previous one (last_event stays), else the value last_event takes, and whether this
-- created the timeline or the pinned list (a list without a TTL yet).
-- A pinned event is stored with `pin = true` in the timeline only; it moves to the pinned list when the
-- timeline outgrows TIMELINE_MAX and would drop it (or a repeat replaces it), so most runs never have a
-- pinned list at all. A pinned list this creates takes the timeline's TTL at once, whoever the caller.
local function pin_aside(timeline, pinned, text)
  local ok, e = pcall(cjson.decode, text)
  if not (ok and type(e) == 'table' and e['pin'] == true) then return false end
  if redis.call('RPUSH', pinned, text) ~= 1 then return false end
  local ttl = redis.call('PTTL', timeline)
  if ttl > 0 then redis.call('PEXPIRE', pinned, ttl) end
  return true
end

local function append_event(timeline, pinned, ev, key, pin, last)
  if pin then ev['pin'] = true end
  local created = false
  if key ~= nil and key ~= '' and last == key then
    local prev = redis.call('LINDEX', timeline, -1)
    if prev then
      local p = cjson.decode(prev)
      ev['n'] = (p['n'] or 1) + 1
      ev['pin'] = nil  -- a repeat is not pinned; the pinned first of the row moves aside, once
      if p['n'] == nil then created = pin_aside(timeline, pinned, prev) end
      redis.call('LSET', timeline, -1, cjson.encode(ev))
      return nil, created
    end
  end
  local text = cjson.encode(ev)
  local length = redis.call('RPUSH', timeline, text)
  created = length == 1
  if length > TIMELINE_MAX then
    local dropped = redis.call('LRANGE', timeline, 0, length - TIMELINE_MAX - 1)
    redis.call('LTRIM', timeline, -TIMELINE_MAX, -1)
    for _, old in ipairs(dropped) do
      if pin_aside(timeline, pinned, old) then created = true end
    end
  end
  return key or '', created
end

-- Append an event; one with the same non-empty `key` as the previous event replaces it, counting
-- repeats in `n`, so a run that waits for hours keeps one row per wait, not one per check.
local function add_event(run_key, timeline, pinned, ev, key, pin)
  local last = false
  if key ~= nil and key ~= '' then last = redis.call('HGET', run_key, 'last_event') end
  local written = append_event(timeline, pinned, ev, key, pin, last)
  if written == '' then
    redis.call('HDEL', run_key, 'last_event')  -- no coalescing key: the field is absent, not empty
  elseif written ~= nil then
    redis.call('HSET', run_key, 'last_event', written)
  end
end

local function keep(ttl_s, ...)
  for _, key in ipairs({...}) do redis.call('EXPIRE', key, ttl_s) end
end

-- The status index (aep/coordination/metrics.py): {prefix}status:{status} ZSET run id -> created_at
-- while open, or the time it ended once terminal (trimmed to `ttl`). Written only when the status
-- changes, so a poll that stays 'running' costs nothing here. An end is also counted (finish|status).
-- `created`: the record's created_at when the caller read it already (false: the field is absent; nil:
-- read it here); `counts`: a table of metric increments to add the end's count to (nil: HINCRBY now).
local function index_status(prefix, run_id, run_key, old, new, now, ttl, created, counts)
  if prefix == nil or prefix == '' or old == new then return end
  if old then redis.call('ZREM', prefix .. 'status:' .. old, run_id) end
  if TERMINAL[new] then
    redis.call('ZADD', prefix .. 'status:' .. new, now, run_id)
    redis.call('ZREMRANGEBYSCORE', prefix .. 'status:' .. new, '-inf', now - ttl)
    if counts then
      counts['finish|' .. new] = (counts['finish|' .. new] or 0) + 1
    else
      redis.call('HINCRBY', prefix .. 'metrics', 'finish|' .. new, 1)
    end
  else
    if created == nil then created = redis.call('HGET', run_key, 'created_at') end
    redis.call('ZADD', prefix .. 'status:' .. new, tonumber(created or '') or now, run_id)
  end
end

-- Add a step's counters (Change.metrics: field -> increment) to {prefix}metrics. Several fields are
-- read and written back in two commands (the script is atomic, so this is HINCRBY for each); a field
-- that does not hold an integer gets HINCRBY itself, which refuses it as it always did.
local function add_metrics(prefix, metrics)
  if prefix == nil or prefix == '' or metrics == nil then return end
  local key, fields = prefix .. 'metrics', {}
  for k, _ in pairs(metrics) do fields[#fields + 1] = k end
  if #fields == 0 then return end
  if #fields > 1 then
    local current = redis.call('HMGET', key, unpack(fields))
    local flat = {}
    for i, k in ipairs(fields) do
      local v, by = current[i], tonumber(metrics[k])
      local sum = tonumber(v or '0') + (by or 0)
      if (v and not string.match(v, '^-?%d+$')) or by == nil or by ~= math.floor(by) or math.abs(sum) >= 2^53 then
        flat = nil
        break
      end
      flat[#flat + 1] = k
      flat[#flat + 1] = string.format('%d', sum)
    end
    if flat then
      redis.call('HSET', key, unpack(flat))
      return
    end
  end
  for k, v in pairs(metrics) do redis.call('HINCRBY', key, k, v) end
end

-- Delete the audience locks `owner` holds among `lock_keys` (locks held by others stay).
local function release_locks(lock_keys, owner)
  for _, key in ipairs(lock_keys) do
    if redis.call('GET', key) == owner then redis.call('DEL', key) end
  end
end

-- The run's quota holder: its id, or "{id}#{generation}" after a resume that POSTs again. `gen`: the
-- record's gen when the caller read it already (false: absent; nil: read it here).
local function holder_of(run_key, run_id, gen)
  if gen == nil then gen = redis.call('HGET', run_key, 'gen') end
  gen = tonumber(gen or '0')
  if gen > 0 then return run_id .. '#' .. gen end
  return run_id
end

-- The run leaves the quota lines it joined at creation (it ended without spending, or was cancelled).
-- `lines`: the record's lines when the caller read it already (false: absent; nil: read it here).
local function leave_lines(run_key, holder, lines)
  if lines == nil then lines = redis.call('HGET', long_of(run_key), 'lines') end
  if lines then
    for _, line in ipairs(cjson.decode(lines)) do redis.call('ZREM', line, holder) end
  end
end
