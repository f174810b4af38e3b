-- run_unintent.lua: AEP demonstrably did not accept a step's POST: forget its intent, refund its slots.
--
-- KEYS[1]  {prefix}run:{run_id}
-- ARGV[1]  lease token of this execution   ARGV[2] step name
--
-- Returns {'ok'} or {'lost'} (this execution no longer holds the run: nothing is changed).
--#include lib_quota
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[1] then return {'lost'} end
local spent = redis.call('HGET', KEYS[1], 'spent:' .. ARGV[2])
if spent then
  local s = cjson.decode(spent)
  quota_refund(s['keys'], s['holder'])
end
redis.call('HDEL', KEYS[1], 'intent:' .. ARGV[2], 'spent:' .. ARGV[2])
return {'ok'}
