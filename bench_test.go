package flypg_test

import (
	"context"
	"database/sql"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
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

// BenchmarkForwardedTypes is BenchmarkForwardedInsert with arguments of
// the kinds ORMs send (text, int, timestamptz, jsonb, bytea, a nullable
// pointer): what encoding them with pgx's type map on the caller costs
// over a direct pgx insert on the primary.
func BenchmarkForwardedTypes(b *testing.B) {
	r := startRegions(b, nil)
	r.exec(b, "DROP TABLE IF EXISTS bench_ty; CREATE TABLE bench_ty (id bigserial PRIMARY KEY, s text, n int8, t timestamptz, j jsonb, bb bytea, p int4)")
	args := []any{"title", int64(42), time.Now(), map[string]any{"a": 1}, []byte("blob"), (*int32)(nil)}
	for _, tc := range []struct {
		name string
		db   *sql.DB
	}{{"pgx-primary", r.primary}, {"flypg-forwarded", r.laxDB}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.db.ExecContext(ctx, "INSERT INTO bench_ty (s, n, t, j, bb, p) VALUES ($1, $2, $3, $4, $5, $6)", args...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkForwardedResult reads 1,000 rows (about 100 KB) through
// flypg on the primary (OnPrimary: the rows cross the link in parts)
// against the same read with pgx directly on the primary.
func BenchmarkForwardedResult(b *testing.B) {
	r := startRegions(b, nil)
	r.exec(b, "DROP TABLE IF EXISTS bench_res; CREATE TABLE bench_res AS SELECT g AS id, md5(g::text) || md5(g::text) || md5(g::text) AS v FROM generate_series(1, 1000) g")
	for _, tc := range []struct {
		name string
		db   *sql.DB
		ctx  context.Context
	}{{"pgx-primary", r.primary, context.Background()}, {"flypg-on-primary", r.laxDB, flypg.OnPrimary(context.Background())}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rows, err := tc.db.QueryContext(tc.ctx, "SELECT id, v FROM bench_res")
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rows.Next() {
					var id int
					var v string
					if err := rows.Scan(&id, &v); err != nil {
						b.Fatal(err)
					}
					n++
				}
				if err := rows.Err(); err != nil || n != 1000 {
					b.Fatal(err, n)
				}
				rows.Close()
			}
		})
	}
}

// BenchmarkLargeResultMemory streams a 40 MiB forwarded result and reports
// the peak heap growth while it is read, as a fraction of the result's
// size: memory is bounded by the stream's window, not the result.
func BenchmarkLargeResultMemory(b *testing.B) {
	r := startRegions(b, nil)
	r.exec(b, "DROP TABLE IF EXISTS bench_big; CREATE TABLE bench_big AS SELECT g AS id, repeat(md5(g::text), 32) AS v FROM generate_series(1, 40000) g")
	ctx := flypg.OnPrimary(context.Background())
	var peak float64
	for b.Loop() {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		rows, err := r.laxDB.QueryContext(ctx, "SELECT id, v FROM bench_big")
		if err != nil {
			b.Fatal(err)
		}
		var m runtime.MemStats
		n := 0
		for rows.Next() {
			if n++; n%2000 == 0 {
				runtime.ReadMemStats(&m)
				peak = max(peak, float64(m.HeapInuse)-float64(base.HeapInuse))
			}
		}
		rows.Close()
		if n != 40000 {
			b.Fatal(n)
		}
	}
	b.ReportMetric(peak/float64(40000*1024), "peak-heap/result")
}
