package flypg_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkLocalRead compares a primary-key read on the replica through
// flypg in a replica region (classify, then run locally) with the same read
// through plain pgx: flypg's per-statement overhead on the read path. Report
// the ratio of the two ns/op figures (target ≤ 1.05).
func BenchmarkLocalRead(b *testing.B) {
	r := startRegions(b, nil)
	r.exec(b, "DROP TABLE IF EXISTS bench_kv; CREATE TABLE bench_kv (id int PRIMARY KEY, v text); INSERT INTO bench_kv SELECT g, 'v' || g FROM generate_series(1, 1000) g")
	for _, tc := range []struct {
		name string
		db   *sql.DB
	}{{"pgx", r.replica}, {"flypg", r.laxDB}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			tc.db.SetMaxIdleConns(4)
			var v string
			require.NoError(b, tc.db.QueryRowContext(ctx, "SELECT v FROM bench_kv WHERE id = $1", 1).Scan(&v))
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				i++
				if err := tc.db.QueryRowContext(ctx, "SELECT v FROM bench_kv WHERE id = $1", i%1000+1).Scan(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkForwardedInsert measures an autocommit INSERT from the replica
// region on loopback (forward + await) against the same INSERT run directly
// on the primary with pgx: the link and await overhead with no WAN latency.
func BenchmarkForwardedInsert(b *testing.B) {
	r := startRegions(b, nil)
	r.exec(b, "DROP TABLE IF EXISTS bench_ins; CREATE TABLE bench_ins (id bigserial PRIMARY KEY, v text)")
	for _, tc := range []struct {
		name string
		db   *sql.DB
	}{{"pgx-primary", r.primary}, {"flypg-forwarded", r.laxDB}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.db.ExecContext(ctx, "INSERT INTO bench_ins (v) VALUES ($1)", "x"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
