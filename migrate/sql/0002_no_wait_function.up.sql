-- flypg 0002: remove the server-side wait function of 0001.
--
-- flypg.wait_for_lsn waited inside one SELECT, so it held a snapshot for up
-- to 50 ms at a time. Replaying a VACUUM or HOT-prune record that conflicts
-- with that snapshot had to wait until the call ended (about 64 ms measured
-- on PostgreSQL 15), which delayed replay for every reader of the standby;
-- with a small max_standby_streaming_delay the call was cancelled instead. A
-- procedure that commits between sleeps still holds a snapshot during each
-- pg_sleep and stalled replay 1-4 ms per conflict, so flypg no longer waits
-- on the server at all: its tracker polls, helped by a WAL-arrival signal,
-- and uses WAIT FOR LSN where PostgreSQL (19+) has it, which holds no
-- snapshot.
--
-- Trackers of older flypg versions that still call the function get
-- "function does not exist" (42883) and fall back to client-side polling.

DROP FUNCTION IF EXISTS flypg.wait_for_lsn(pg_lsn, integer);

-- The schema goes too if 0001's function was all it held; objects of your
-- own in it keep it (and this migration still succeeds).
DO $$
BEGIN
    DROP SCHEMA IF EXISTS flypg; -- RESTRICT: fails if anything else is in it
EXCEPTION WHEN dependent_objects_still_exist THEN
    NULL;
END
$$;
