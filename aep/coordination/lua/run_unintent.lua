-- run_unintent.lua: AEP demonstrably did not accept a step's POST: forget its intent, refund its slots.
--
-- KEYS[1]  {prefix}run:{run_id} (and its long fields' hash, lib_run.lua)
-- ARGV[1]  lease token of this execution   ARGV[2] step name
--
-- Returns {'ok'} or {'lost'} (this execution no longer holds the run: nothing is changed).
--#include lib_quota
--#include lib_run
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[1] then return {'lost'} end
local spent = redis.call('HGET', long_of(KEYS[1]), LONG_PREFIX .. ARGV[2])
if spent then
  local s = cjson.decode(spent)
  quota_refund(s['keys'], s['holder'])
end
write_fields(KEYS[1], {}, {'intent:' .. ARGV[2], LONG_PREFIX .. ARGV[2]})
return {'ok'}
