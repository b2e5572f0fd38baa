// Package router decides where a SQL statement may run when the local
// database is a PostgreSQL hot standby: on the standby (a read), on the
// primary (a write), or nowhere statement by statement (transaction control
// written as SQL text, LISTEN).
//
// flypg's driver calls it for every statement it is given as text in a
// replica region, so it is a hand-written lexer and a one-pass scanner
// rather than a parser: it allocates nothing, never fails, and is
// conservative — when the text does not say clearly that a statement only
// reads, it is a Write (or, for calls of unknown functions, Unsure: try on
// the standby, and run as a write if the standby answers SQLSTATE 25006).
// A Write sent to the primary that was really a read costs a round trip; a
// write taken for a read is refused by the standby, except for the few
// things a standby allows but must not do locally (advisory locks), which
// the classifier names explicitly.
//
// The lexer follows PostgreSQL's: -- and nested /* */ comments, '…'
// strings (a doubled quote stands for one), E'…' with backslash escapes,
// U&'…', B'…', X'…', N'…', dollar-quoted $tag$…$tag$ bodies ($1 is a
// parameter, not a quote), and "quoted identifiers", so that keywords
// inside any of them never count. Keywords are matched case-insensitively,
// and only where a statement can start: a column named "delete", a table
// alias update, or updated_at are not statements.
//
// The rules, statement by statement:
//
//   - Read: SELECT, VALUES, TABLE, WITH (no data-modifying CTE), SHOW,
//     EXPLAIN without ANALYZE (even of a write: nothing executes), EXPLAIN
//     ANALYZE of a read, COPY … TO and COPY (query) TO, FETCH, MOVE,
//     DECLARE … CURSOR FOR a read, and text with no statement at all.
//   - Session: SET (incl. LOCAL, SET TRANSACTION, SET ROLE), RESET,
//     DISCARD, DEALLOCATE, CLOSE, LOAD.
//   - Unsure: a query calling a function that is not a known pure builtin
//     (user functions, schema-qualified functions outside pg_catalog),
//     EXECUTE, and EXPLAIN ANALYZE of such a query.
//   - Write: INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY … FROM, CALL,
//     DO, every DDL statement (CREATE, ALTER, DROP, COMMENT, SECURITY
//     LABEL, REFRESH MATERIALIZED VIEW, IMPORT FOREIGN SCHEMA, …), GRANT,
//     REVOKE, VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, LOCK, NOTIFY;
//     a query with a data-modifying CTE, SELECT … INTO, or a row-locking
//     clause (FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE);
//     a query calling nextval, setval, currval, lastval, pg_notify, an
//     advisory-lock function (pg_advisory_*, pg_try_advisory_*), a
//     large-object writer (lo_create, lo_import, lo_put, …), txid_current,
//     pg_terminate_backend and other server-control functions; EXPLAIN
//     ANALYZE of a write; PREPARE name AS a write; and anything not
//     recognised.
//   - TxControl: BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT,
//     SAVEPOINT, RELEASE, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED.
//   - Listen: LISTEN, UNLISTEN.
//
// Some writes a standby refuses with a code other than 25006 (55000 for
// pg_current_wal_lsn, XX000 "cannot assign OIDs during recovery" for
// large-object writers): they are Write up front, since only 25006 makes
// the driver retry on the primary. PREPARE name AS a write is a Write
// although a standby would accept the PREPARE itself, because its EXECUTE
// cannot run there. testdata/corpus.sql holds the labelled statements, and
// oracle_test.go checks every label against a real hot standby.
//
// How the statements of a multi-statement string combine is described on
// Analyze. Classifier adds a bounded, concurrency-safe cache keyed by the
// query text, for the driver to own: ORMs send the same text over and
// over.
package router
