package buntest_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/integration/internal/fixture"
)

type Book struct {
	bun.BaseModel `bun:"table:books"`
	ID            int64          `bun:",pk,autoincrement"`
	Title         string         `bun:",notnull,unique"`
	Tags          []string       `bun:",array"`
	Meta          map[string]any `bun:",type:jsonb"`
	Cover         []byte
	Published     time.Time `bun:",nullzero"`
	CreatedAt     time.Time `bun:",nullzero,notnull,default:current_timestamp"`
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestBun runs bun's query builders with the app in lax, on both ways of
// opening the database. Every read follows a write at once while the
// replica's replay is delayed: it sees the write only because flypg
// waited.
func TestBun(t *testing.T) {
	r := suite.Regions(t)
	for _, o := range []struct {
		name string
		open func(t *testing.T) *bun.DB
	}{
		{"Conn", func(t *testing.T) *bun.DB { return openBun(r.Lax) }},
		{"DriverName", func(t *testing.T) *bun.DB {
			sqldb, err := sql.Open(flypg.DriverName, os.Getenv("DATABASE_URL"))
			require.NoError(t, err)
			return bun.NewDB(sqldb, pgdialect.New())
		}},
	} {
		t.Run(o.name, func(t *testing.T) {
			db := o.open(t)
			t.Cleanup(func() { db.Close() })
			ctx := testCtx(t)
			require.NoError(t, r.Exec(ctx, "DROP TABLE IF EXISTS books"))

			counts := fixture.Watch(r.Lax)
			_, err := db.NewCreateTable().Model((*Book)(nil)).Exec(ctx)
			require.NoError(t, err)
			n, err := db.NewSelect().Model((*Book)(nil)).Count(ctx)
			require.NoError(t, err, "the new table is visible on the replica")
			assert.Zero(t, n)
			fixture.AssertRouted(t, counts())

			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					counts := fixture.Watch(r.Lax)
					sc.run(t, testCtx(t), db, o.name+"-"+sc.name)
					fixture.AssertRouted(t, counts())
				})
			}
		})
	}
}

var scenarios = []struct {
	name string
	run  func(t *testing.T, ctx context.Context, db *bun.DB, tag string)
}{
	{"InsertReturningThenSelect", func(t *testing.T, ctx context.Context, db *bun.DB, tag string) {
		published := time.Date(1865, 11, 26, 0, 0, 0, 0, time.UTC)
		b := Book{Title: tag, Tags: []string{"classic", `quote"d`, "comma,ed"},
			Meta: map[string]any{"pages": 96.0, "lang": "en"}, Cover: []byte{0, 1, 2, 0xff, '\\', '\''}, Published: published}
		_, err := db.NewInsert().Model(&b).Returning("id, created_at").Exec(ctx)
		require.NoError(t, err)
		require.NotZero(t, b.ID, "RETURNING id came back")
		assert.False(t, b.CreatedAt.IsZero(), "RETURNING created_at came back")

		var got Book
		require.NoError(t, db.NewSelect().Model(&got).Where("id = ?", b.ID).Scan(ctx),
			"the row is visible on the replica right after the insert")
		assert.Equal(t, b.Title, got.Title)
		assert.Equal(t, b.Tags, got.Tags, "an inlined array round-trips")
		assert.Equal(t, b.Meta, got.Meta, "inlined jsonb round-trips")
		assert.Equal(t, b.Cover, got.Cover, "inlined bytea round-trips")
		assert.True(t, published.Equal(got.Published), "inlined timestamp round-trips: %v", got.Published)

		var inRecovery bool
		require.NoError(t, db.NewRaw("SELECT pg_is_in_recovery()").Scan(ctx, &inRecovery))
		assert.True(t, inRecovery, "reads run on lax's replica")
	}},
	{"BulkInsertThenIn", func(t *testing.T, ctx context.Context, db *bun.DB, tag string) {
		books := []Book{{Title: tag + "-1"}, {Title: tag + "-2"}, {Title: tag + "-3"}}
		res, err := db.NewInsert().Model(&books).Exec(ctx)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		assert.EqualValues(t, 3, n)
		for _, b := range books {
			require.NotZero(t, b.ID, "bun's default RETURNING filled every id")
		}
		var got []Book
		require.NoError(t, db.NewSelect().Model(&got).Where("id IN (?)", bun.In([]int64{books[0].ID, books[2].ID})).Order("id").Scan(ctx))
		require.Len(t, got, 2)
		assert.Equal(t, []string{tag + "-1", tag + "-3"}, []string{got[0].Title, got[1].Title})
	}},
	{"UpdateDelete", func(t *testing.T, ctx context.Context, db *bun.DB, tag string) {
		b := Book{Title: tag}
		_, err := db.NewInsert().Model(&b).Exec(ctx)
		require.NoError(t, err)

		res, err := db.NewUpdate().Model(&b).Set("tags = ?", pgdialect.Array([]string{"updated"})).WherePK().Exec(ctx)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
		var got Book
		require.NoError(t, db.NewSelect().Model(&got).Where("id = ?", b.ID).Scan(ctx))
		assert.Equal(t, []string{"updated"}, got.Tags, "the update is visible")

		b.Title = tag + "-renamed"
		_, err = db.NewUpdate().Model(&b).Column("title").WherePK().Returning("*").Exec(ctx)
		require.NoError(t, err)
		require.NoError(t, db.NewSelect().Model(&got).Where("id = ?", b.ID).Scan(ctx))
		assert.Equal(t, tag+"-renamed", got.Title)

		res, err = db.NewDelete().Model(&b).WherePK().Exec(ctx)
		require.NoError(t, err)
		n, err = res.RowsAffected()
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
		err = db.NewSelect().Model(&got).Where("id = ?", b.ID).Scan(ctx)
		assert.ErrorIs(t, err, sql.ErrNoRows, "the delete is visible")
	}},
	{"RunInTx", func(t *testing.T, ctx context.Context, db *bun.DB, tag string) {
		var id int64
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			b := Book{Title: tag}
			if _, err := tx.NewInsert().Model(&b).Exec(ctx); err != nil {
				return err
			}
			id = b.ID
			var inTx Book
			// Inside the transaction, on the primary: its own write.
			if err := tx.NewSelect().Model(&inTx).Where("id = ?", id).Scan(ctx); err != nil {
				return err
			}
			var inRecovery bool
			if err := tx.NewRaw("SELECT pg_is_in_recovery()").Scan(ctx, &inRecovery); err != nil {
				return err
			}
			if inRecovery {
				return errors.New("a read-write transaction ran on the replica")
			}
			return nil
		})
		require.NoError(t, err)
		exists, err := db.NewSelect().Model((*Book)(nil)).Where("id = ?", id).Exists(ctx)
		require.NoError(t, err)
		assert.True(t, exists, "the commit is visible on the replica")

		boom := errors.New("boom")
		err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewInsert().Model(&Book{Title: tag + "-rolled"}).Exec(ctx); err != nil {
				return err
			}
			return boom
		})
		require.ErrorIs(t, err, boom)
		exists, err = db.NewSelect().Model((*Book)(nil)).Where("title = ?", tag+"-rolled").Exists(ctx)
		require.NoError(t, err)
		assert.False(t, exists, "the rolled-back insert left nothing")
	}},
	{"UniqueViolation", func(t *testing.T, ctx context.Context, db *bun.DB, tag string) {
		_, err := db.NewInsert().Model(&Book{Title: tag}).Exec(ctx)
		require.NoError(t, err)
		_, err = db.NewInsert().Model(&Book{Title: tag}).Exec(ctx)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		assert.Equal(t, "23505", pgErr.Code)
		n, err := db.NewSelect().Model((*Book)(nil)).Where("title = ?", tag).Count(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
	}},
	{"Blob6MiB", func(t *testing.T, ctx context.Context, db *bun.DB, tag string) {
		// bun inlines the bytes as a 12 MiB hex literal in the SQL text.
		cover := make([]byte, 6<<20)
		_, _ = rand.Read(cover)
		b := Book{Title: tag, Cover: cover}
		_, err := db.NewInsert().Model(&b).Exec(ctx)
		require.NoError(t, err)
		var got []byte
		require.NoError(t, db.NewSelect().Model((*Book)(nil)).Column("cover").Where("id = ?", b.ID).Scan(ctx, &got))
		assert.True(t, string(cover) == string(got), "the blob round-trips byte for byte (%d bytes back)", len(got))
	}},
}
