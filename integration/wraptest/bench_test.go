package wraptest_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkWrappedInsert measures one autocommit INSERT from the replica
// region over the benchmark WAN (FLYPG_BENCH_RTT, 50 ms by default)
// through flypg bare, under otelsql and under sqlmw, against the ideal of
// one round trip plus the primary's own time, measured in the same run:
// the wrappers' cost is beside the round trip.
func BenchmarkWrappedInsert(b *testing.B) {
	r := suite.Bench(b)
	ctx := context.Background()
	require.NoError(b, r.Exec(ctx, "DROP TABLE IF EXISTS events; CREATE TABLE events (id bigserial PRIMARY KEY, kind text NOT NULL)"))
	mw, err := openSqlmw(r.Lax, &counting{})
	require.NoError(b, err)
	for _, c := range []struct {
		name string
		db   *sql.DB
	}{
		{"flypg", r.Lax.OpenDB()},
		{"otelsql", openOtel(r.Lax, noop.NewTracerProvider())},
		{"sqlmw", mw},
	} {
		b.Run(c.name, func(b *testing.B) {
			defer c.db.Close()
			c.db.SetMaxIdleConns(8)
			suite.BenchWrite(b, func() error {
				_, err := c.db.ExecContext(ctx, "INSERT INTO events (kind) VALUES ($1)", "bench")
				return err
			})
		})
	}
}
