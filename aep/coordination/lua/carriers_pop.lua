-- carriers_pop.lua: the watchdog's one step. Hands out every run whose carrier is due, so that its
-- current step is published (again), and pushes each one's deadline to now + grace.
--
-- KEYS[1]  {prefix}carriers   ZSET run id -> epoch s at which the run's current step must be published
-- KEYS[2..] the broker queue's lists (kombu: the queue name, and one per priority step)
-- ARGV[1]  now (epoch s) from a test, or ''   ARGV[2] at most this many   ARGV[3] grace (s)
-- ARGV[4]  key prefix: the run hashes {prefix}run:{run_id} are read and written, recoveries are
--          counted in {prefix}metrics (recover|rewake, recover|recover) and a vanished run leaves the
--          status index (not in KEYS: a standalone or Sentinel Redis, not Redis Cluster); an open
--          record of layout LIFTS_FROM is lifted to LAYOUT (lib_run.lua), so it goes on
--
-- A member's carrier is 'due' (a wait ended: a normal wake-up), 'woken' (a wake-up was published
-- `grace` ago and no execution took the run: the message was lost or is still queued: 'rewake') or
-- 'running' (the execution's lease ran out: it died: 'recover'). Rewakes and recoveries are counted
-- and leave a pinned timeline event. While the broker queue holds messages, a 'woken' run's message
-- may simply be waiting its turn, so it is not handed out again (no duplicates piling up behind a
-- backlog): its deadline moves on by `grace`, and it is handed out once the queue has drained. Returns a flat list {run_id, step, seq, gen, kind, late_s, …}:
-- late_s is how long after its due time the run was handed out.
--#include lib_quota
--#include lib_run
local now = server_now(ARGV[1])
local grace = tonumber(ARGV[3])
local backlog = 0
for i = 2, #KEYS do backlog = backlog + redis.call('LLEN', KEYS[i]) end
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due, 2 do
  local run_id, score = due[i], tonumber(due[i + 1])
  local rk = ARGV[4] .. 'run:' .. run_id
  local h = redis.call('HMGET', rk, 'status', 'step', 'seq', 'gen', 'carrier', 'v')
  if h[1] and not is_terminal(h[1]) and h[6] ~= LAYOUT and lift(rk) then h[6] = LAYOUT end  -- lib_run.lua
  if not h[1] or is_terminal(h[1]) or h[6] ~= LAYOUT then
    redis.call('ZREM', KEYS[1], run_id)
    if not h[1] then
      for _, s in ipairs({'queued', 'running', 'waiting'}) do redis.call('ZREM', ARGV[4] .. 'status:' .. s, run_id) end
    end
  else
    local kind, late = 'wake', now - score
    if h[5] == 'woken' then kind = 'rewake'; late = now - (score - grace) end
    if kind == 'rewake' and backlog > 0 then
      kind = 'defer'
      redis.call('ZADD', KEYS[1], now + grace, run_id)
    elseif h[5] == 'running' then
      kind = 'recover'
      redis.call('HDEL', rk, 'lease', 'lease_until')
    end
    if kind ~= 'defer' then
      redis.call('HSET', rk, 'carrier', 'woken')
      redis.call('ZADD', KEYS[1], now + grace, run_id)
    end
    if kind == 'rewake' or kind == 'recover' then
      redis.call('HINCRBY', rk, 'recoveries', 1)
      redis.call('HINCRBY', ARGV[4] .. 'metrics', 'recover|' .. kind, 1)
      local what = 'its last execution stopped without ending the step (lease ran out)'
      if kind == 'rewake' then what = 'no execution took its wake-up message (lost, or still queued)' end
      add_event(rk, rk .. ':timeline', rk .. ':pinned', {t = now, step = h[2], event = 'recovered',
        detail = string.format('watchdog published %s again %.1fs after it was due: %s', h[2], late, what)},
        '', true)
    end
    if kind ~= 'defer' then
      for _, v in ipairs({run_id, h[2], h[3], h[4] or '0', kind, string.format('%.3f', late)}) do
        out[#out + 1] = v
      end
    end
  end
end
return out
