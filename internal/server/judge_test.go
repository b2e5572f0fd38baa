package server

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flypg/flypg/internal/backend"
	"github.com/flypg/flypg/internal/pgcluster"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			code = 1
		}
	}
	os.Exit(code)
}

func primary(t testing.TB) *sql.DB {
	c := pgcluster.ForTest(t, pgcluster.Options{})
	db, err := sql.Open("pgx", c.Primary.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// The judge sees each kind of session state a statement can leave that
// cannot be reset, and nothing on a clean session; settings it resets.
func TestJudge(t *testing.T) {
	db := primary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := backend.Pgx{}
	for _, tc := range []struct {
		name, setup string
		stateful    bool
		locks       bool
	}{
		{"clean", "SELECT 1", false, false},
		{"SET (reset instead)", "SET TimeZone = 'Asia/Tokyo'", false, false},
		{"set_config (reset instead)", "SELECT set_config('work_mem', '8MB', false)", false, false},
		{"SET ROLE (reset instead)", "SET ROLE pg_monitor", false, false},
		{"advisory lock", "SELECT pg_advisory_lock(99)", true, true},
		{"prepared statement", "PREPARE p AS SELECT 1", true, false},
		{"holdable cursor", "DECLARE c CURSOR WITH HOLD FOR SELECT 1", true, false},
		{"listen", "LISTEN ch", true, false},
		{"temp table", "CREATE TEMP TABLE t (x int)", true, false},
		{"xact lock only", "SELECT pg_advisory_xact_lock(98)", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := db.Conn(ctx)
			require.NoError(t, err)
			defer func() { retire(c); c.Close() }()
			_, err = c.ExecContext(ctx, tc.setup)
			require.NoError(t, err)
			s, err := judge(ctx, b, c, true)
			require.NoError(t, err)
			assert.Equal(t, tc.stateful, s.stateful)
			assert.Equal(t, tc.locks, s.locks)
			assert.NotZero(t, s.lsn)
			var tz, mem, role string
			require.NoError(t, c.QueryRowContext(ctx, "SELECT current_setting('TimeZone'), current_setting('work_mem'), current_user").Scan(&tz, &mem, &role))
			assert.NotEqual(t, "Asia/Tokyo", tz, "settings are reset")
			assert.NotEqual(t, "8MB", mem)
			assert.NotEqual(t, "pg_monitor", role)
		})
	}
	// Custom placeholders are invisible to the count; RESET ALL clears them.
	c, err := db.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.ExecContext(ctx, "SELECT set_config('app.tenant', 'A', false)")
	require.NoError(t, err)
	_, err = judge(ctx, b, c, false)
	require.NoError(t, err)
	var v string
	require.NoError(t, c.QueryRowContext(ctx, "SELECT current_setting('app.tenant', true)").Scan(&v))
	assert.Empty(t, v, "the value does not reach the next caller")

	// Sequence state is forgotten: currval in the next caller's statement
	// cannot return this caller's value.
	_, err = c.ExecContext(ctx, "CREATE SEQUENCE IF NOT EXISTS js; SELECT nextval('js')")
	require.NoError(t, err)
	_, err = judge(ctx, b, c, false)
	require.NoError(t, err)
	assert.Error(t, c.QueryRowContext(ctx, "SELECT currval('js')").Scan(new(int64)), "currval is not defined in the session any more")
}

// BenchmarkJudge: the cost, per forwarded write, of asking the session for
// its state (and resetting its settings) in the query that reads the
// commit position, against reading the position alone. Run as an INSERT
// followed by each; report the ratio of the two ns/op.
func BenchmarkJudge(b *testing.B) {
	db := primary(b)
	ctx := context.Background()
	_, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS bj (id bigserial PRIMARY KEY, v text)")
	require.NoError(b, err)
	be := backend.Pgx{}
	c, err := db.Conn(ctx)
	require.NoError(b, err)
	defer c.Close()
	for _, tc := range []struct {
		name string
		read func() error
	}{
		{"insert+lsn", func() error { _, err := be.SimpleRow(ctx, c, lsnSQL); return err }},
		{"insert+judge", func() error { _, err := judge(ctx, be, c, true); return err }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.ExecContext(ctx, "INSERT INTO bj (v) VALUES ('x')"); err != nil {
					b.Fatal(err)
				}
				if err := tc.read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
