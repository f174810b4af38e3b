-- run_note.lua: append an event to a run's timeline outside any execution (RunLedger.note).
--
-- KEYS[1]  {prefix}run:{run_id}:timeline   KEYS[2] its pinned events
-- ARGV[1]  the event (JSON: t, step, event, detail)   ARGV[2] '1': a pinned event
--
-- The trim keeps pinned events as every other append does (lib_run.lua append_event). Returns the
-- timeline's length.
--#include lib_run
append_event(KEYS[1], KEYS[2], cjson.decode(ARGV[1]), '', ARGV[2] == '1', false)
return redis.call('LLEN', KEYS[1])
