-- quota_commit.lua: record that AEP accepted `holder`'s run, moving it from reserved to committed.
--
-- Key layout (see quota_reserve.lua and aep/quota.py):
--   {prefix}quota:{name}:{scope}:{window_start}:committed  SET   holders whose run AEP accepted
--   {prefix}quota:{name}:{scope}:{window_start}:reserved   ZSET  holder -> reservation expiry (epoch s)
--
-- KEYS[1]  committed SET
-- KEYS[2]  reserved ZSET
-- ARGV[1]  holder
-- ARGV[2]  key_ttl_ms    lifetime of both keys: until the window's end plus one more window
--
-- Idempotent. The holder is committed even if its reservation already expired (or was
-- taken over by another holder's slot): AEP accepted the POST, so the ledger records reality,
-- which can leave `used` above the limit. Returns 1 if newly committed, 0 if it already was.
local committed, reserved = KEYS[1], KEYS[2]
local holder = ARGV[1]
local key_ttl_ms = ARGV[2]

redis.call('ZREM', reserved, holder)
local added = redis.call('SADD', committed, holder)
redis.call('PEXPIRE', committed, key_ttl_ms)
redis.call('PEXPIRE', reserved, key_ttl_ms)
return added
