-- Pop due delayed tasks, leasing them while the caller publishes them to the broker.
--
-- KEYS[1]  {prefix}delay:due      ZSET member -> due time (epoch s)
-- KEYS[2]  {prefix}delay:lease    ZSET member -> lease expiry (epoch s) while being published
-- KEYS[3]  {prefix}delay:payload  HASH member -> serialised Celery signature (JSON)
-- ARGV[1]  now (epoch s, from the caller's clock)
-- ARGV[2]  max members to pop
-- ARGV[3]  lease length (s)
--
-- Returns a flat array {member1, payload1, member2, payload2, ...}.
-- A member whose lease expired (its publisher died before `ack`) is due again: at-least-once.
-- A member whose payload is gone (acked elsewhere) is dropped.
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local lease_until = now + tonumber(ARGV[3])

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, m in ipairs(expired) do
  redis.call('ZREM', KEYS[2], m)
  redis.call('ZADD', KEYS[1], now, m)
end

local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  local payload = redis.call('HGET', KEYS[3], m)
  if payload then
    redis.call('ZADD', KEYS[2], lease_until, m)
    out[#out + 1] = m
    out[#out + 1] = payload
  end
end
return out
