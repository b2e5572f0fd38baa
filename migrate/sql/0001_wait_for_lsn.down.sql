-- flypg 0001 down: remove the wait function. flypg's tracker falls back to
-- client-side polling on connections that open after this.
DROP FUNCTION IF EXISTS flypg.wait_for_lsn(pg_lsn, integer);

-- RESTRICT (the default): objects of your own in schema flypg make this fail
-- rather than disappear.
DROP SCHEMA IF EXISTS flypg;
