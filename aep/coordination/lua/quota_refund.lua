-- quota_refund.lua: give a holder's slot back (AEP demonstrably did not accept its POST).
--
-- KEYS[1..n]  committed-set keys (see lib_quota.lua); the pending sets are derived from them
-- ARGV[1]     holder
--#include lib_quota
quota_refund(KEYS, ARGV[1])
return 1
