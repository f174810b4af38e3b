-- lib_run.lua: helpers shared by the run-ledger scripts (included; see aep/coordination/runs.py).
--
-- Run record: HASH {prefix}run:{run_id}; timeline LIST {prefix}run:{run_id}:timeline (trimmed);
-- pinned LIST {prefix}run:{run_id}:pinned (never trimmed). Events are JSON objects
-- {t, step, event, detail[, n][, actor]}.
--#const RUN_CONSTS

local function is_terminal(status)
  return status ~= false and status ~= nil and TERMINAL[status] == true
end

-- Append an event; one with the same non-empty `key` as the previous event replaces it, counting
-- repeats in `n`, so a run that waits for hours keeps one row per wait, not one per check.
local function add_event(run_key, timeline, pinned, ev, key, pin)
  if key ~= nil and key ~= '' and redis.call('HGET', run_key, 'last_event') == key then
    local last = redis.call('LINDEX', timeline, -1)
    if last then
      local prev = cjson.decode(last)
      ev['n'] = (prev['n'] or 1) + 1
      redis.call('LSET', timeline, -1, cjson.encode(ev))
      return
    end
  end
  local text = cjson.encode(ev)
  redis.call('RPUSH', timeline, text)
  redis.call('LTRIM', timeline, -TIMELINE_MAX, -1)
  if pin then redis.call('RPUSH', pinned, text) end
  redis.call('HSET', run_key, 'last_event', key or '')
end

local function keep(ttl_s, ...)
  for _, key in ipairs({...}) do redis.call('EXPIRE', key, ttl_s) end
end

-- The status index (aep/coordination/metrics.py): {prefix}status:{status} ZSET run id -> created_at
-- while open, or the time it ended once terminal (trimmed to `ttl`). Written only when the status
-- changes, so a poll that stays 'running' costs nothing here. An end is also counted (finish|status).
local function index_status(prefix, run_id, run_key, old, new, now, ttl)
  if prefix == nil or prefix == '' or old == new then return end
  if old then redis.call('ZREM', prefix .. 'status:' .. old, run_id) end
  if TERMINAL[new] then
    redis.call('ZADD', prefix .. 'status:' .. new, now, run_id)
    redis.call('ZREMRANGEBYSCORE', prefix .. 'status:' .. new, '-inf', now - ttl)
    redis.call('HINCRBY', prefix .. 'metrics', 'finish|' .. new, 1)
  else
    local created = tonumber(redis.call('HGET', run_key, 'created_at') or '') or now
    redis.call('ZADD', prefix .. 'status:' .. new, created, run_id)
  end
end

-- Add a step's counters (Change.metrics: field -> increment) to {prefix}metrics.
local function add_metrics(prefix, metrics)
  if prefix == nil or prefix == '' or metrics == nil then return end
  for k, v in pairs(metrics) do redis.call('HINCRBY', prefix .. 'metrics', k, v) end
end

-- Delete the audience locks `owner` holds among `lock_keys` (locks held by others stay).
local function release_locks(lock_keys, owner)
  for _, key in ipairs(lock_keys) do
    if redis.call('GET', key) == owner then redis.call('DEL', key) end
  end
end

-- The run's quota holder: its id, or "{id}#{generation}" after a resume that POSTs again.
local function holder_of(run_key, run_id)
  local gen = tonumber(redis.call('HGET', run_key, 'gen') or '0')
  if gen > 0 then return run_id .. '#' .. gen end
  return run_id
end

-- The run leaves the quota lines it joined at creation (it ended without spending, or was cancelled).
local function leave_lines(run_key, holder)
  local lines = redis.call('HGET', run_key, 'lines')
  if lines then
    for _, line in ipairs(cjson.decode(lines)) do redis.call('ZREM', line, holder) end
  end
end
