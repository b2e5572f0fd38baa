// Package router decides where a SQL statement may run when the local
// database is a PostgreSQL hot standby: on the standby (a read), on the
// primary (a write), or nowhere statement by statement (transaction control
// written as SQL text, and session-bound state that cannot follow the
// caller).
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
// The lexer follows PostgreSQL's scan.l wherever a difference could hide a
// keyword or a function call: -- and nested /* */ comments; '…' strings (a
// doubled quote stands for one) and their continuation over whitespace
// holding a newline ('a'⏎'b' is one string, and an E'…' string continued
// that way keeps its backslash escapes); E'…' with backslash escapes; plain '…' and
// N'…' with backslash escapes too when standard_conforming_strings is off
// (Options.NonStandardStrings); B'…' and X'…', which have no escapes at
// all; U&'…' and U&"…" with an optional UESCAPE clause, whose escapes
// cannot hide a quote, and whose identifiers are decoded before they are
// looked up; dollar-quoted $tag$…$tag$ bodies ($1 is a parameter, and a $
// inside an identifier such as a$$ is part of it); numbers that end where
// their digits do (1e'…' is 1 and an escape string to PostgreSQL 14;
// later versions reject it); and "quoted identifiers", so that keywords
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
//     DISCARD, DEALLOCATE, CLOSE, LOAD, UNLISTEN (a standby accepts it as a
//     no-op), and a query that would be a Read but calls set_config or
//     setseed: they change only the connection they run on, the caller's
//     own local one.
//   - Unsure: a query calling a function that is not a known pure builtin
//     (user functions, schema-qualified functions outside pg_catalog),
//     EXECUTE, and EXPLAIN ANALYZE of such a query.
//   - Write: INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY … FROM, CALL,
//     DO, every DDL statement (CREATE, ALTER, DROP, COMMENT, SECURITY
//     LABEL, REFRESH MATERIALIZED VIEW, IMPORT FOREIGN SCHEMA, …), GRANT,
//     REVOKE, VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, LOCK, NOTIFY;
//     a query with a data-modifying CTE, SELECT … INTO, or a row-locking
//     clause (FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE);
//     a query calling nextval, setval, pg_notify, a transaction-scoped
//     advisory-lock function (pg_advisory_xact_lock…,
//     pg_try_advisory_xact_lock…), a large-object writer (lo_create,
//     lo_import, lo_put, …), txid_current, pg_terminate_backend and other
//     server-control functions; EXPLAIN ANALYZE of a write; PREPARE name
//     AS a write; CREATE TEMP TABLE … ON COMMIT DROP; and anything not
//     recognised. A Write that also calls set_config (or a DO block that
//     SETs) reports Has(Session).
//   - TxControl: BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT,
//     SAVEPOINT, RELEASE, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED.
//   - SessionBound, with Result.Bound saying which kind: a statement that
//     calls a session advisory-lock function (pg_advisory_lock,
//     pg_advisory_lock_shared, pg_try_advisory_lock,
//     pg_try_advisory_lock_shared, pg_advisory_unlock,
//     pg_advisory_unlock_shared, pg_advisory_unlock_all) or currval or
//     lastval, in a query, INSERT, UPDATE, DELETE, MERGE, CALL, COPY
//     (query), DECLARE, PREPARE or EXPLAIN ANALYZE; CREATE [LOCAL|GLOBAL]
//     TEMP[ORARY] …, CREATE … pg_temp.name, SELECT … INTO TEMP or INTO
//     pg_temp.name; LISTEN; and a DO block whose body (or a string in it,
//     for EXECUTE) does any of these.
//
// SessionBound state is the caller's only while it keeps its session, and
// in a replica region's autocommit nothing keeps one for it: the standby
// grants an advisory lock that no primary session ever sees, and refuses
// the rest; forwarded, the state lands on a pooled primary connection that
// the serving node retires afterwards (or, for currval and lastval, reads
// what another caller's nextval left there). So a driver refuses it, with
// the alternative that Bound.Alternative names: transaction-scoped locks
// and temporary tables inside BeginTx, INSERT … RETURNING, or a connection
// of the app's own to the primary. The classifier cannot see into
// functions: a user function that takes a session lock is Unsure (and the
// standby runs it), and CALL of a procedure that does is a Write.
//
// Some writes a standby refuses with a code other than 25006 (55000 for
// pg_current_wal_lsn, XX000 "cannot assign OIDs during recovery" for
// large-object writers): they are Write up front, since only 25006 makes
// the driver retry on the primary. PREPARE name AS a write is a Write
// although a standby would accept the PREPARE itself, because its EXECUTE
// cannot run there. testdata/corpus.sql holds the labelled statements, and
// oracle_test.go checks every label against a real hot standby — including
// which statements leave an advisory lock on its session, and, on
// generated quoting puzzles, that the lexer ends strings where
// PostgreSQL's does.
//
// How the statements of a multi-statement string combine is described on
// AnalyzeOpts. Classifier adds a bounded, concurrency-safe cache keyed by
// the query text and Options, for the driver to own: ORMs send the same
// text over and over.
package router
