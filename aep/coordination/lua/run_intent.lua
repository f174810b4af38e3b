-- run_intent.lua: record the intent to send a POST and spend its quota slots, all or nothing.
-- After this returns 'ok' the step may send the POST; until its outcome is known no other POST of
-- this step is sent (the next execution only looks: aep/pipeline/steps/looks.py).
--
-- KEYS[1]  {prefix}run:{run_id} (the spent slots go to its long fields' hash, lib_run.lua)
-- ARGV[1]  lease token of this execution   ARGV[2] step name   ARGV[3] quota holder
-- ARGV[4]  edge (s), see lib_quota.lua     ARGV[5] now (epoch s) from a test, or ''
-- ARGV[6..] buckets, five values each: committed_key, limit, window_start, window_end, line_key
--
-- Returns {'ok', now}, {'lost'} (the lease is gone), {'cancelled'} (a cancel began or the run ended),
-- {'exists', intent time} (an unresolved intent is already recorded), {'quota', i, used},
-- {'line', i, used, ahead} or {'skew', i}.
--#include lib_quota
--#include lib_run
local now = server_now(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'lease', 'cancel_requested', 'status', 'intent:' .. ARGV[2])
if h[1] ~= ARGV[1] then return {'lost'} end
if h[2] or is_terminal(h[3]) then return {'cancelled'} end
if h[4] then return {'exists', h[4]} end
local buckets, keys = {}, {}
for i = 6, #ARGV, 5 do
  buckets[#buckets + 1] = {ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), ARGV[i + 4]}
  keys[#keys + 1] = ARGV[i]
end
local spent = quota_spend(buckets, ARGV[3], now, tonumber(ARGV[4]))
if spent[1] ~= 'ok' then return spent end
write_fields(KEYS[1], {'intent:' .. ARGV[2], tostring(now),
  LONG_PREFIX .. ARGV[2], cjson.encode({holder = ARGV[3], keys = keys})}, {})
return {'ok', tostring(now)}
