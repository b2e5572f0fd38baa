package sqlxtest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkSqlxInsert measures one sqlx write from the replica region over
// the benchmark WAN (FLYPG_BENCH_RTT, 50 ms by default) against the ideal
// of one round trip plus the primary's own time, measured in the same run:
// NamedExec and a Rebind'ed Exec (one forwarded autocommit statement each),
// and a MustBegin transaction (two round trips: BEGIN with the INSERT, then
// COMMIT).
func BenchmarkSqlxInsert(b *testing.B) {
	r := suite.Bench(b)
	ctx := context.Background()
	require.NoError(b, r.Exec(ctx, "DROP TABLE IF EXISTS people; CREATE TABLE people (id bigserial PRIMARY KEY, name text NOT NULL, email text NOT NULL)"))
	db := openSqlx(r.Lax)
	defer db.Close()
	db.SetMaxIdleConns(8)
	p := person{Name: "bench", Email: "bench@example.com"}
	b.Run("NamedExec", func(b *testing.B) {
		suite.BenchWrite(b, func() error {
			_, err := db.NamedExecContext(ctx, "INSERT INTO people (name, email) VALUES (:name, :email)", p)
			return err
		})
	})
	b.Run("Exec", func(b *testing.B) {
		q := db.Rebind("INSERT INTO people (name, email) VALUES (?, ?)")
		suite.BenchWrite(b, func() error {
			_, err := db.ExecContext(ctx, q, p.Name, p.Email)
			return err
		})
	})
	b.Run("MustBegin", func(b *testing.B) {
		suite.BenchWrite(b, func() error {
			tx := db.MustBeginTx(ctx, nil)
			if _, err := tx.NamedExecContext(ctx, "INSERT INTO people (name, email) VALUES (:name, :email)", p); err != nil {
				_ = tx.Rollback()
				return err
			}
			return tx.Commit()
		})
	})
}
