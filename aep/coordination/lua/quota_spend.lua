-- quota_spend.lua: spend one slot of every bucket for a holder, all or nothing (see lib_quota.lua).
--
-- KEYS     none: the bucket keys travel in ARGV with their limits and windows
-- ARGV[1]  holder ("{run_id}" or "{run_id}#{generation}")
-- ARGV[2]  edge (s): how far outside its window a bucket may be and still be spent in
-- ARGV[3]  now (epoch s) injected by a test, or '' for the server's TIME
-- ARGV[4..] buckets, five values each: committed_key, limit, window_start, window_end, line_key ('' for none)
--
-- Returns {'ok'}, {'quota', bucket index (1-based), used}, {'line', i, used, ahead} or {'skew', i}.
--#include lib_quota
local buckets = {}
for i = 4, #ARGV, 5 do
  buckets[#buckets + 1] = {ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), ARGV[i + 4]}
end
return quota_spend(buckets, ARGV[1], server_now(ARGV[3]), tonumber(ARGV[2]))
