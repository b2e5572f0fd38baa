package buntest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

// BenchmarkBunInsert measures one bun write from the replica region over
// the benchmark WAN (FLYPG_BENCH_RTT, 50 ms by default) against the ideal
// of one round trip plus the primary's own time, measured in the same run:
// an INSERT … RETURNING id (one forwarded statement, its values inlined by
// bun), and the same in RunInTx (BEGIN with the INSERT, then COMMIT).
func BenchmarkBunInsert(b *testing.B) {
	r := suite.Bench(b)
	ctx := context.Background()
	require.NoError(b, r.Exec(ctx, "DROP TABLE IF EXISTS notes; CREATE TABLE notes (id bigserial PRIMARY KEY, text text)"))
	db := openBun(r.Lax)
	defer db.Close()
	db.SetMaxIdleConns(8)
	b.Run("InsertReturning", func(b *testing.B) {
		suite.BenchWrite(b, func() error {
			_, err := db.NewInsert().Model(&Note{Text: "bench"}).Returning("id").Exec(ctx)
			return err
		})
	})
	b.Run("RunInTx", func(b *testing.B) {
		suite.BenchWrite(b, func() error {
			return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				_, err := tx.NewInsert().Model(&Note{Text: "bench"}).Returning("id").Exec(ctx)
				return err
			})
		})
	})
}
