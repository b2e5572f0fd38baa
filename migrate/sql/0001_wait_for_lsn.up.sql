-- flypg 0001: the server-side wait function used by flypg's LSN tracker.
-- Run on the PRIMARY; it replicates to every standby, where it is called.

CREATE SCHEMA IF NOT EXISTS flypg;

-- flypg.wait_for_lsn returns as soon as this standby has replayed WAL up to
-- target, or when timeout_ms have passed, whichever comes first, and returns
-- pg_last_wal_replay_lsn() (compare it with target to tell which). A NULL
-- target returns the replay position at once.
--
-- On a database that is not in recovery (a primary, or a promoted standby) it
-- returns NULL at once: there is no replay to wait for, and returning the
-- primary's own WAL position would pass for a replay position.
--
-- target may be what pg_current_wal_insert_lsn() returns right after a commit:
-- when that commit's record ends exactly at a WAL page boundary, the insert
-- position lies past the next page's header, where no record ever ends and
-- replay would not arrive until some later record does; such a target is
-- moved back to the page boundary. (Requires PostgreSQL 14+ for pg_lsn - numeric.)
--
-- PostgreSQL sleeps in whole milliseconds (pg_sleep rounds up), so replay is
-- noticed within about 1 ms. Each call holds one backend for up to
-- timeout_ms, so keep it short (flypg uses 50 ms) and call it again.
CREATE OR REPLACE FUNCTION flypg.wait_for_lsn(target pg_lsn, timeout_ms integer DEFAULT 50)
RETURNS pg_lsn
LANGUAGE plpgsql
VOLATILE
PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    deadline timestamptz := clock_timestamp() + make_interval(secs => greatest(coalesce(timeout_ms, 0), 0) / 1000.0);
    replayed pg_lsn;
    pos numeric := target - '0/0'::pg_lsn;
    page_offset numeric := pos % current_setting('wal_block_size')::numeric;
BEGIN
    IF page_offset = 24 OR (page_offset = 40 AND pos % pg_size_bytes(current_setting('wal_segment_size')) = 40) THEN
        target := target - page_offset; -- 24 and 40: the short and long page header sizes
    END IF;
    LOOP
        IF NOT pg_is_in_recovery() THEN
            RETURN NULL;
        END IF;
        replayed := pg_last_wal_replay_lsn();
        IF target IS NULL OR replayed >= target OR clock_timestamp() >= deadline THEN
            RETURN replayed;
        END IF;
        PERFORM pg_sleep(0.001);
    END LOOP;
END
$fn$;

COMMENT ON FUNCTION flypg.wait_for_lsn(pg_lsn, integer) IS
    'flypg: wait up to timeout_ms for this standby to replay target; returns the replayed LSN, NULL when not in recovery';
