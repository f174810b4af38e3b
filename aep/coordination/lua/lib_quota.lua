-- lib_quota.lua: spending and refunding quota slots (included by quota_spend.lua and run_intent.lua).
--
-- Key layout (aep/coordination/quota.py):
--   {prefix}quota:{name}:{scope}:{window_start}:committed  SET  holders that spent a slot in the window
--   {prefix}quota:{name}:{scope}:{window_start}:pending    SET  those whose POST outcome is not yet known
--
-- A bucket is {committed_key, limit, window_start, window_end, line_key} (epoch s; line_key '' for
-- none). `now` is the server's time (TIME) unless a test injects one.
--
-- The line (ZSET {prefix}line:{name}:{scope}: holder -> rank score) holds the admitted runs that
-- have not spent yet. Its order: runs told 'now' and schedules, by time of admission (score = time),
-- then the other runs, first come (score = 1e11 + time). A holder may spend only if the slots still
-- free cover it and every holder ahead of it, so when a window opens the runs are served in order.
--
-- A bucket must contain `now`, give or take `edge` seconds (the caller counts a POST near a
-- boundary in both windows): otherwise the caller's clock is off.

local function pending_of(key)
  return string.sub(key, 1, -11) .. ':pending'   -- ':committed' is 10 characters
end

-- How many holders are ahead of `holder` in `line` (0 when it is not in the line).
local function ahead_in_line(line, holder)
  if line == nil or line == '' then return 0 end
  local score = redis.call('ZSCORE', line, holder)
  if not score then return 0 end
  return redis.call('ZCOUNT', line, '-inf', '(' .. score)
end

-- The first bucket that `holder` may not spend now, read without writing: {'quota', i, used} (bucket i is
-- full), {'line', i, used, ahead} (there is room, but for the holders ahead in line only), or nil. A
-- holder that already spent in a bucket needs nothing more of it.
local function quota_refusal(buckets, holder)
  for i, b in ipairs(buckets) do
    if redis.call('SISMEMBER', b[1], holder) == 0 then
      local used = redis.call('SCARD', b[1])
      if used + 1 > b[2] then return {'quota', i, used} end
      local ahead = ahead_in_line(b[5], holder)
      if used + ahead + 1 > b[2] then return {'line', i, used, ahead} end
    end
  end
  return nil
end

-- Returns {'ok'}, a refusal of quota_refusal (nothing written) or {'skew', i}.
local function quota_spend(buckets, holder, now, edge)
  for i, b in ipairs(buckets) do
    if now < b[3] - edge or now >= b[4] + edge then return {'skew', i} end
  end
  local refused = quota_refusal(buckets, holder)
  if refused then return refused end
  for _, b in ipairs(buckets) do
    if b[5] ~= nil and b[5] ~= '' then redis.call('ZREM', b[5], holder) end
    -- Keep both sets until one window after theirs ends (relative to `now`, never <= 0).
    local ttl_ms = math.max(1000, math.floor((b[4] + (b[4] - b[3]) - now) * 1000))
    redis.call('SADD', b[1], holder)
    redis.call('SADD', pending_of(b[1]), holder)
    redis.call('PEXPIRE', b[1], ttl_ms)
    redis.call('PEXPIRE', pending_of(b[1]), ttl_ms)
  end
  return {'ok'}
end

-- The POST's outcome is known and AEP accepted it: the slot stays spent, it is no longer pending.
local function quota_settle(keys, holder)
  for _, key in ipairs(keys) do redis.call('SREM', pending_of(key), holder) end
end

-- AEP demonstrably did not accept the POST: give the slot back.
local function quota_refund(keys, holder)
  for _, key in ipairs(keys) do
    redis.call('SREM', key, holder)
    redis.call('SREM', pending_of(key), holder)
  end
end

local function server_now(injected)
  if injected ~= nil and injected ~= '' then return tonumber(injected) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
