-- flypg 0002 down: back to the state after 0001, with the wait function
-- installed (the same definition as 0001). Down of 0001 then removes it.

CREATE SCHEMA IF NOT EXISTS flypg;

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
