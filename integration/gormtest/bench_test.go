package gormtest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// BenchmarkGORMCreate measures one GORM Create from the replica region
// over the benchmark WAN (FLYPG_BENCH_RTT, 50 ms by default), through
// flypg, against the ideal — one round trip plus the primary's own time —
// measured in the same run (x-ideal), and in round trips (RTTs/op).
// GORM's default transaction costs two round trips (BEGIN travels with the
// INSERT, COMMIT is the second); SkipDefaultTransaction one. database/sql
// is the same INSERT without GORM, for GORM's own share.
func BenchmarkGORMCreate(b *testing.B) {
	r := suite.Bench(b)
	ctx := context.Background()
	require.NoError(b, r.Exec(ctx, "DROP TABLE IF EXISTS bench_todos; CREATE TABLE bench_todos (id bigserial PRIMARY KEY, title text, done boolean)"))
	sqlDB := r.Lax.OpenDB()
	defer sqlDB.Close()
	sqlDB.SetMaxIdleConns(8)

	for _, c := range []struct {
		name string
		cfg  gorm.Config
	}{
		{"DefaultTransaction", gorm.Config{}},
		{"SkipDefaultTransaction", gorm.Config{SkipDefaultTransaction: true}},
		{"SkipDefaultTransaction+PrepareStmt", gorm.Config{SkipDefaultTransaction: true, PrepareStmt: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := c.cfg
			cfg.Logger = logger.Discard
			db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &cfg)
			require.NoError(b, err)
			db = db.WithContext(ctx)
			suite.BenchWrite(b, func() error { return db.Create(&benchTodo{Title: "x"}).Error })
		})
	}
	b.Run("database/sql", func(b *testing.B) {
		var id int64
		suite.BenchWrite(b, func() error {
			return sqlDB.QueryRowContext(ctx, "INSERT INTO bench_todos (title, done) VALUES ($1, $2) RETURNING id", "x", false).Scan(&id)
		})
	})
}

type benchTodo struct {
	ID    uint
	Title string
	Done  bool
}

func (benchTodo) TableName() string { return "bench_todos" }
