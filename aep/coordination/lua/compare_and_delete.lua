-- Delete a lock only if it still holds our token (it may have expired and been taken by someone else).
--
-- KEYS[1]  the lock key, e.g. {prefix}run:{run_id}:lock or {prefix}ims:lock:{client_hash}
-- ARGV[1]  the token the caller set it to
--
-- Returns 1 if deleted, 0 otherwise.
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
