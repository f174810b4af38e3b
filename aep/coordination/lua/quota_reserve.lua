-- quota_reserve.lua: reserve one unit of a calendar-window quota for `holder`, atomically.
--
-- Key layout (one pair per quota name, scope and window; see aep/quota.py):
--   {prefix}quota:{name}:{scope}:{window_start}:committed  SET   holders whose run AEP accepted
--   {prefix}quota:{name}:{scope}:{window_start}:reserved   ZSET  holder -> reservation expiry (epoch s)
-- {name} and {scope} are percent-encoded (":" -> %3A, "@" -> %40), so they never split a key.
-- {window_start} is floor(now / window_s) * window_s, in epoch seconds (the UTC day by default).
--
-- KEYS[1]  committed SET
-- KEYS[2]  reserved ZSET
-- ARGV[1]  holder        the idempotency key of the caller (e.g. a run id)
-- ARGV[2]  limit         units allowed per window; <= 0 means nothing new can be reserved
-- ARGV[3]  now           epoch seconds from the caller's clock (not TIME, so tests can move time)
-- ARGV[4]  expires_at    epoch seconds at which this reservation lapses (now + ttl)
-- ARGV[5]  key_ttl_ms    lifetime of both keys: until the window's end plus one more window
--
-- Returns {ok, already, used, reserved}: ok/already are 0/1; used = committed count and
-- reserved = live reservations, both after this call.
local committed, reserved = KEYS[1], KEYS[2]
local holder = ARGV[1]
local limit = tonumber(ARGV[2])
local now = ARGV[3]
local expires_at = ARGV[4]
local key_ttl_ms = ARGV[5]

-- A reservation whose expiry is <= now belongs to a worker that crashed or gave up.
redis.call('ZREMRANGEBYSCORE', reserved, '-inf', now)

local ok, already = 0, 0
if redis.call('SISMEMBER', committed, holder) == 1 then
  ok, already = 1, 1
elseif redis.call('ZSCORE', reserved, holder) then
  -- A retry of the same step: keep its slot and give it a fresh lease.
  redis.call('ZADD', reserved, expires_at, holder)
  ok, already = 1, 1
else
  local used = redis.call('SCARD', committed) + redis.call('ZCARD', reserved)
  if used + 1 <= limit then
    redis.call('ZADD', reserved, expires_at, holder)
    ok = 1
  end
end

-- Refreshed on every call; PEXPIRE on a missing key is a no-op.
redis.call('PEXPIRE', committed, key_ttl_ms)
redis.call('PEXPIRE', reserved, key_ttl_ms)
return {ok, already, redis.call('SCARD', committed), redis.call('ZCARD', reserved)}
