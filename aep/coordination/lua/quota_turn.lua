-- quota_turn.lua: whether a holder could spend one slot of every bucket now, read without writing
-- (lib_quota.lua's quota_refusal, the spend script's own rule). The spend script still decides; this
-- lets a run out of turn wait before it takes locks that the run whose turn it is needs.
--
-- KEYS     none: the bucket keys travel in ARGV, as for quota_spend.lua
-- ARGV[1]  holder ("{run_id}" or "{run_id}#{generation}")
-- ARGV[2..] buckets, five values each: committed_key, limit, window_start, window_end, line_key ('' for none)
--
-- Returns 1 (the slots still free cover the holder and every holder ahead of it in line) or 0.
--#include lib_quota
local buckets = {}
for i = 2, #ARGV, 5 do
  buckets[#buckets + 1] = {ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), ARGV[i + 4]}
end
if quota_refusal(buckets, ARGV[1]) then return 0 end
return 1
