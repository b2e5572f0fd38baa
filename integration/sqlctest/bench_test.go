package sqlctest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/integration/sqlctest/authors"
)

// BenchmarkSqlcCreate measures sqlc's CreateAuthor (an INSERT … RETURNING)
// from the replica region over the benchmark WAN (FLYPG_BENCH_RTT, 50 ms
// by default) against the ideal of one round trip plus the primary's own
// time, measured in the same run: unprepared (New) and prepared (Prepare;
// flypg sends a prepared write as text plus arguments, so it costs the
// same).
func BenchmarkSqlcCreate(b *testing.B) {
	r := suite.Bench(b)
	ctx := context.Background()
	require.NoError(b, r.Exec(ctx, "DROP TABLE IF EXISTS authors; "+schema))
	db := r.Lax.OpenDB()
	defer db.Close()
	db.SetMaxIdleConns(8)
	prepared, err := authors.Prepare(ctx, db)
	require.NoError(b, err)
	defer prepared.Close()
	arg := authors.CreateAuthorParams{Name: "bench", Tags: []string{"a", "b"}}
	for _, c := range []struct {
		name string
		q    *authors.Queries
	}{{"New", authors.New(db)}, {"Prepare", prepared}} {
		b.Run(c.name, func(b *testing.B) {
			suite.BenchWrite(b, func() error {
				_, err := c.q.CreateAuthor(ctx, arg)
				return err
			})
		})
	}
}
