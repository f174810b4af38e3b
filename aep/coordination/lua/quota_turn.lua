-- quota_turn.lua: whether a holder could spend one slot of every bucket now, read without writing
-- (see lib_quota.lua). The spend script still decides; this lets a run out of turn wait before it
-- takes locks that the run whose turn it is needs.
--
-- KEYS     none: the bucket keys travel in ARGV
-- ARGV[1]  holder ("{run_id}" or "{run_id}#{generation}")
-- ARGV[2..] buckets, three values each: committed_key, limit, line_key ('' for none)
--
-- Returns 1 (the slots still free cover the holder and every holder ahead of it in line) or 0.
--#include lib_quota
for i = 2, #ARGV, 3 do
  local key, limit, line = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  if redis.call('SISMEMBER', key, ARGV[1]) == 0 then
    if redis.call('SCARD', key) + ahead_in_line(line, ARGV[1]) + 1 > limit then return 0 end
  end
end
return 1
