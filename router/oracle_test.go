package router

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/pgcluster"
)

// fixtures are the objects the corpus refers to, created on the primary.
const fixtures = `
CREATE TABLE users (
	id bigserial PRIMARY KEY,
	name text NOT NULL DEFAULT '',
	email text,
	age int,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz,
	deleted_at timestamptz,
	"delete" boolean NOT NULL DEFAULT false,
	"update" int,
	"select" text,
	updated_by text,
	data jsonb
);
CREATE INDEX users_email_idx ON users (email);
CREATE TABLE orders (
	id bigserial PRIMARY KEY,
	user_id bigint REFERENCES users (id),
	total numeric(10, 2),
	status text,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE items (id int PRIMARY KEY, sku text, qty int);
CREATE TABLE audit (id bigserial PRIMARY KEY, msg text, at timestamptz DEFAULT now());
CREATE TABLE "Weird Table" ("select" int, "from" text);
CREATE TABLE café (naïve int);
CREATE TABLE temp (id int);
CREATE SCHEMA app;
CREATE TABLE app.settings (key text PRIMARY KEY, value text);
CREATE SEQUENCE seq;
CREATE VIEW active_users AS SELECT * FROM users WHERE deleted_at IS NULL;
CREATE MATERIALIZED VIEW order_totals AS SELECT user_id, sum(total) AS total FROM orders GROUP BY user_id;
CREATE FUNCTION add_one(bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1';
CREATE FUNCTION user_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM users';
CREATE FUNCTION log_msg(text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE i bigint;
BEGIN
	INSERT INTO audit (msg) VALUES ($1) RETURNING id INTO i;
	RETURN i;
END $$;
CREATE FUNCTION app.touch() RETURNS void LANGUAGE sql AS 'UPDATE app.settings SET value = value';
CREATE PROCEDURE noop() LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE PROCEDURE add_audit(text) LANGUAGE sql AS $$ INSERT INTO audit (msg) VALUES ($1) $$;
INSERT INTO users (name, email, age, data) VALUES
	('ann', 'ann@example.com', 30, '{"a": 1}'),
	('bob', 'bob@example.com', 40, '{"b": [1, 2]}');
INSERT INTO orders (user_id, total, status) VALUES (1, 9.99, 'paid'), (2, 20, 'new');
INSERT INTO items VALUES (1, 'a', 1);
INSERT INTO app.settings VALUES ('k', 'v');
INSERT INTO "Weird Table" VALUES (1, 'x');
INSERT INTO café VALUES (1);
REFRESH MATERIALIZED VIEW order_totals;
SELECT lo_create(4242);
`

// refusedInRecovery reports whether err is PostgreSQL refusing a statement
// because the server is a standby:
//
//   - 25006 read_only_sql_transaction: every standby transaction is
//     read-only, and PreventCommandDuringRecovery uses the same code;
//   - with "recovery" in the message only (PostgreSQL 15):
//     55000 object_not_in_prerequisite_state ("recovery is in progress",
//     WAL-control functions), 0A000 feature_not_supported ("cannot set
//     transaction read-write mode during recovery"), and XX000
//     internal_error ("cannot assign OIDs/TransactionIds during
//     recovery", raised by large-object writers and EXPLAIN ANALYZE
//     CREATE TABLE AS).
//
// Only 25006 makes the driver retry an Unsure statement on the primary,
// which is why everything that fails with one of the others is classified
// Write up front. Any other error — a missing fixture, a syntax error — is
// not a refusal.
func refusedInRecovery(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "25006":
		return true
	case "55000", "0A000", "XX000":
		return strings.Contains(pgErr.Message, "recovery")
	}
	return false
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case refusedInRecovery(err):
		return "refused"
	}
	return "error"
}

// TestOracle runs the corpus on a real hot standby: reads must run, writes
// must be refused, except for the records that say otherwise (each with a
// reason); Unsure, Session, TxControl and SessionBound records state what
// the standby does, which documents how the driver's fallback behaves, and
// why a SessionBound statement is refused rather than tried there. After
// every record the oracle asks the standby session whether it now holds an
// advisory lock: exactly the records marked "-- holds" may, and each of
// them is SessionBound. Then it checks the lexer against PostgreSQL's own
// on generated quoting puzzles (see testLexerOracle).
func TestOracle(t *testing.T) {
	recs := loadCorpus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: 1})
	primary := openDB(t, c.Primary.DSN())
	_, err := primary.ExecContext(ctx, fixtures)
	require.NoError(t, err, "fixtures on the primary")
	// Sync polls pg_last_wal_replay_lsn() on the replica until it reaches
	// the primary's current WAL position.
	require.NoError(t, c.Sync(ctx), "replica replays the fixtures")

	replica := openDB(t, c.Replicas[0].DSN())
	replica.SetMaxIdleConns(0) // a fresh session for every statement

	t.Run("corpus", func(t *testing.T) {
		counts := map[string]int{}
		for _, r := range recs {
			if r.Standby == "skip" {
				continue
			}
			res, err := runOnStandby(ctx, replica, r.SQL, r.Opts, r.Autocommit)
			require.NoErrorf(t, err, "%s: the oracle's own statements", r)
			got := outcome(res.err)
			counts[fmt.Sprintf("%v/%s", r.Label, got)]++
			assert.Equalf(t, r.Standby, got, "%s (%v): %v", r, r.Label, res.err)
			assert.Equalf(t, r.Holds, res.locks > 0, "%s: the standby session holds %d advisory locks afterwards", r, res.locks)
			if got == "error" {
				t.Logf("%s: %v", r, res.err) // expected errors, for the reader to check
			}
		}
		t.Logf("standby outcomes by label: %v", counts)
	})
	t.Run("lexer", func(t *testing.T) { testLexerOracle(ctx, t, replica) })
}

// standbyResult is what one statement did on a standby session.
type standbyResult struct {
	err   error // the statement's
	locks int   // advisory locks the session holds afterwards
}

// runOnStandby runs one statement on a fresh standby session with a
// statement timeout, inside a transaction that is rolled back unless
// autocommit is set (commands that refuse transaction blocks, and records
// that are transaction blocks themselves), and then counts the advisory
// locks the session holds: session-level ones survive the rollback.
// Positional parameters get NULLs: every check a standby makes comes
// before any row is touched. err is about the oracle's own statements.
func runOnStandby(ctx context.Context, db *sql.DB, query string, o Options, autocommit bool) (res standbyResult, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET statement_timeout = '10s'"); err != nil {
		return res, fmt.Errorf("set timeout: %w", err)
	}
	if o.NonStandardStrings {
		if _, err := conn.ExecContext(ctx, "SET standard_conforming_strings = off"); err != nil {
			return res, fmt.Errorf("set standard_conforming_strings: %w", err)
		}
	}
	if !autocommit {
		if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
			return res, fmt.Errorf("begin: %w", err)
		}
	}
	_, res.err = conn.ExecContext(ctx, query, make([]any, maxParam(query))...)
	// Also ends a block the statement opened itself and left aborted; with
	// no transaction open it is only a warning.
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		return res, fmt.Errorf("rollback: %w", err)
	}
	err = conn.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()").Scan(&res.locks)
	if err != nil {
		return res, fmt.Errorf("count locks: %w", err)
	}
	// Release them before the session ends: a backend frees its locks
	// only after the client has gone, and the next statement's
	// pg_try_advisory_lock would otherwise race with that.
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		return res, fmt.Errorf("unlock: %w", err)
	}
	return res, nil
}

// testLexerOracle builds statements in which pg_try_advisory_lock(42) may
// or may not hide inside a string, depending on exactly how PostgreSQL
// ends the string before it (continuation over a newline, escapes,
// standard_conforming_strings, prefixes), and runs each on the standby:
// whenever PostgreSQL took the lock the classifier must say SessionBound,
// and whenever it ran the statement without taking it, must not.
func testLexerOracle(ctx context.Context, t *testing.T, db *sql.DB) {
	starts := []string{`'a'`, `E'a'`, `e'\\'`, `N'a'`, `U&'a'`, `U&'\'`, `B'0'`, `X'0f'`, `'\\'`, `$$a$$`}
	gaps := []string{"\n", " ", " -- c\n", "\n-- c\n", " /* c */\n", "\n\t ", "\r\n", "\f\n", "\t--\n--\n"}
	tails := []string{
		`'\'', pg_try_advisory_lock(42) --'`,
		`'', pg_try_advisory_lock(42) --'`,
		`'\' , pg_try_advisory_lock(42) --'`,
		`', pg_try_advisory_lock(42) --'`,
		`AS x, pg_try_advisory_lock(42) --'`,
	}
	var took, ran, failed int
	for _, nonStd := range []bool{false, true} {
		o := Options{NonStandardStrings: nonStd}
		for _, start := range starts {
			for _, gap := range gaps {
				for _, tail := range tails {
					q := "SELECT " + start + gap + tail
					res, err := runOnStandby(ctx, db, q, o, true)
					require.NoErrorf(t, err, "%q: the oracle's own statements", q)
					got := AnalyzeOpts(q, o)
					switch {
					case res.locks > 0:
						took++
						assert.Equalf(t, SessionBound.String(), got.Class.String(), "%q (nonstandard %v): PostgreSQL took the lock", q, nonStd)
					case res.err == nil:
						ran++
						assert.NotEqualf(t, SessionBound.String(), got.Class.String(), "%q (nonstandard %v): PostgreSQL ran it without the lock", q, nonStd)
					default:
						failed++
					}
				}
			}
		}
	}
	t.Logf("lexer oracle: %d statements took the lock, %d ran without it, %d failed", took, ran, failed)
	// The puzzles are only a test if PostgreSQL answers them both ways.
	assert.Positive(t, took)
	assert.Positive(t, ran)
}

// maxParam returns the highest $n in query, read with the package's own
// lexer so that "$1" inside strings does not count. The parameters of
// PREPARE … AS belong to the prepared statement: none are passed.
func maxParam(query string) int {
	lx := lexer{s: query}
	n := 0
	for t := lx.next(); t.kind != tEOF; t = lx.next() {
		if lx.is(t, "prepare") {
			return 0
		}
		if t.kind == tParam {
			if v, err := strconv.Atoi(lx.text(t)[1:]); err == nil {
				n = max(n, v)
			}
		}
	}
	return n
}

func openDB(t *testing.T, dsn string) *sql.DB {
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}
