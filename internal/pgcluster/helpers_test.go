package pgcluster_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flypg/flypg/internal/pgcluster"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func open(t testing.TB, s *pgcluster.Server) *sql.DB {
	db, err := sql.Open("pgx", s.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func query(t testing.TB, s *pgcluster.Server, q string, args ...any) string {
	t.Helper()
	out, err := s.QueryString(ctxFor(t), q, args...)
	require.NoError(t, err)
	return out
}

// method is one way of making standbys: the bin directory pgcluster is
// given decides it.
type method struct {
	name string
	bin  string // Options.BinDir; "" = FindBinDir's
}

// methods are the standby methods the binaries under test allow: with
// pg_basebackup (Debian's packages) both — the second through a bin
// directory that holds only initdb and postgres, like the npm builds — and
// without it (the npm builds) only the copy.
func methods(t testing.TB) []method {
	bin, err := pgcluster.FindBinDir()
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(bin, "pg_basebackup")); err != nil {
		t.Logf("%s has no pg_basebackup: only the copy method applies", bin)
		return []method{{name: "copy", bin: bin}}
	}
	return []method{{name: "pg_basebackup", bin: bin}, {name: "copy", bin: withoutBasebackup(t, bin)}}
}

// withoutBasebackup is a bin directory with links to bin's initdb and
// postgres only. PostgreSQL resolves the links to find its libraries and
// share directory. It is world-readable: as root the servers run as the
// postgres user.
func withoutBasebackup(t testing.TB, bin string) string {
	dir, err := os.MkdirTemp("", "flypg-pgbin-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	for _, prog := range []string{"initdb", "postgres"} {
		require.NoError(t, os.Symlink(filepath.Join(bin, prog), filepath.Join(dir, prog)))
	}
	return dir
}

// fakeBin is a bin directory whose initdb and postgres are shell scripts
// that print script.
func fakeBin(t testing.TB, script string) string {
	dir, err := os.MkdirTemp("", "flypg-fakebin-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	for _, prog := range []string{"initdb", "postgres"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, prog), []byte("#!/bin/sh\n"+script+"\n"), 0o755))
	}
	return dir
}

// forEachMethod runs fn as a subtest per standby method, with opts'
// BinDir set to the method's. The subtests run in parallel: much of their
// time is spent waiting for servers.
func forEachMethod(t *testing.T, opts pgcluster.Options, fn func(t *testing.T, c *pgcluster.Cluster)) {
	for _, m := range methods(t) {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			o := opts
			o.BinDir = m.bin
			fn(t, pgcluster.ForTest(t, o))
		})
	}
}

// insertLSN inserts a row on s and returns the WAL insert position after it.
func insertLSN(t testing.TB, s *pgcluster.Server, table string, id int) string {
	t.Helper()
	ctx := ctxFor(t)
	require.NoError(t, s.Exec(ctx, "INSERT INTO "+table+" VALUES ($1)", id))
	return query(t, s, "SELECT pg_current_wal_insert_lsn()::text")
}
