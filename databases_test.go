package flypg_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
)

// withDB returns dsn (a URL) pointed at database name.
func withDB(t *testing.T, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

// createDatabase creates a database on the primary and waits until the
// replicas have it.
func createDatabase(t *testing.T, r *regions, name string) {
	t.Helper()
	ctx := testCtx(t)
	_, err := r.primary.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	require.NoError(t, err)
	_, err = r.primary.ExecContext(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	require.NoError(t, r.c.Sync(ctx))
}

// Several databases per node: each forwarded request names its database,
// rows land in their own database, each has its own tracker and
// read-your-writes; a database the serving node does not serve is a clear
// error, with nothing run anywhere.
func TestSeveralDatabases(t *testing.T) {
	r := startRegions(t, nil)
	for _, name := range []string{"db_a", "db_b", "db_c"} {
		createDatabase(t, r, name)
	}
	ctx := testCtx(t)
	open := func(n *flypg.Node, name string) *sql.DB {
		db, err := n.Open(withDB(t, r.c.Primary.DSN(), name))
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		return db
	}
	// The serving node opens the databases it serves; lax names its local
	// copies by the explicit DSN's server and each database's name.
	for _, name := range []string{"db_a", "db_b"} {
		require.NoError(t, open(r.syd, name).PingContext(ctx))
	}
	laxA, laxB := open(r.lax, "db_a"), open(r.lax, "db_b")
	for _, db := range []*sql.DB{laxA, laxB} {
		_, err := db.ExecContext(ctx, "CREATE TABLE t (id bigserial PRIMARY KEY, src text)")
		require.NoError(t, err)
	}
	for i := range 20 {
		for name, db := range map[string]*sql.DB{"db_a": laxA, "db_b": laxB} {
			var id int64
			require.NoError(t, db.QueryRowContext(ctx, "INSERT INTO t (src) VALUES ($1) RETURNING id", name).Scan(&id))
			var src string
			require.NoError(t, db.QueryRowContext(ctx, "SELECT src FROM t WHERE id = $1", id).Scan(&src), "iteration %d: %s's row visible at once", i, name)
			assert.Equal(t, name, src)
			var rec bool
			require.NoError(t, db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec))
			assert.True(t, rec, "reads on the replica")
		}
	}
	for _, name := range []string{"db_a", "db_b"} {
		direct, err := sql.Open("pgx", withDB(t, r.c.Primary.DSN(), name))
		require.NoError(t, err)
		var n, foreign int
		require.NoError(t, direct.QueryRowContext(ctx, "SELECT count(*), count(*) FILTER (WHERE src <> $1) FROM t", name).Scan(&n, &foreign))
		direct.Close()
		assert.Equal(t, 20, n, "%s has its own rows", name)
		assert.Zero(t, foreign, "no row of another database landed in %s", name)
	}
	st := r.lax.Stats()
	names := map[string]bool{}
	for _, d := range st.Databases {
		names[d.Name] = true
		if d.Name == "db_a" || d.Name == "db_b" {
			assert.NotZero(t, d.Tracker.Waits, "%s waited on its own tracker", d.Name)
			assert.NotZero(t, d.SysID)
		}
	}
	assert.True(t, names["db_a"] && names["db_b"])

	// db_c exists but syd does not serve it: lax's write is declined, named
	// in the error, and runs nowhere.
	laxC := open(r.lax, "db_c")
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := laxC.ExecContext(cctx, "CREATE TABLE never_here (id int)")
	require.Error(t, err)
	assert.True(t, errors.Is(err, flypg.ErrNoPrimary), "not sent anywhere: %v", err)
	assert.Contains(t, err.Error(), "db_c")
	direct, err := sql.Open("pgx", withDB(t, r.c.Primary.DSN(), "db_c"))
	require.NoError(t, err)
	defer direct.Close()
	var exists bool
	require.NoError(t, direct.QueryRowContext(ctx, "SELECT to_regclass('never_here') IS NOT NULL").Scan(&exists))
	assert.False(t, exists, "nothing ran in db_c")
	require.NoError(t, r.sydDB.QueryRowContext(ctx, "SELECT to_regclass('never_here') IS NOT NULL").Scan(&exists))
	assert.False(t, exists, "nothing ran in syd's own database either")
}
