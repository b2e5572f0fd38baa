package sqlctest_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/integration/internal/fixture"
	"github.com/flypg/flypg/integration/sqlctest/authors"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestSqlc runs sqlc-shaped queries with the app in lax: unprepared (New)
// and prepared (Prepare), on node.OpenDB() and on sql.Open("flypg", …).
// Every read follows a write at once while the replica's replay is
// delayed: it sees the write only because flypg waited.
func TestSqlc(t *testing.T) {
	r := suite.Regions(t)
	for _, o := range []struct {
		name string
		open func(t *testing.T) *sql.DB
	}{
		{"Conn", func(t *testing.T) *sql.DB { return r.Lax.OpenDB() }},
		{"DriverName", func(t *testing.T) *sql.DB {
			db, err := sql.Open(flypg.DriverName, os.Getenv("DATABASE_URL"))
			require.NoError(t, err)
			return db
		}},
	} {
		for _, prepared := range []bool{false, true} {
			name := o.name + "/New"
			if prepared {
				name = o.name + "/Prepare"
			}
			t.Run(name, func(t *testing.T) {
				ctx := testCtx(t)
				db := o.open(t)
				t.Cleanup(func() { db.Close() })
				q := authors.New(db)
				if prepared {
					var err error
					q, err = authors.Prepare(ctx, db)
					require.NoError(t, err, "every query prepares, the writes too")
					t.Cleanup(func() { assert.NoError(t, q.Close()) })
				}
				for _, sc := range scenarios {
					t.Run(sc.name, func(t *testing.T) {
						counts := fixture.Watch(r.Lax)
						sc.run(t, testCtx(t), db, q)
						fixture.AssertRouted(t, counts())
					})
				}
			})
		}
	}
}

var scenarios = []struct {
	name string
	run  func(t *testing.T, ctx context.Context, db *sql.DB, q *authors.Queries)
}{
	{"CreateThenGet", func(t *testing.T, ctx context.Context, db *sql.DB, q *authors.Queries) {
		a, err := q.CreateAuthor(ctx, authors.CreateAuthorParams{Name: "Octavia",
			Bio: sql.NullString{String: "Kindred", Valid: true}, Tags: []string{"sf", "with space", `q"uote`}})
		require.NoError(t, err)
		require.NotZero(t, a.ID, "RETURNING came back")
		assert.Equal(t, []string{"sf", "with space", `q"uote`}, a.Tags, "pq.Array arguments and results cross the link")
		got, err := q.GetAuthor(ctx, a.ID)
		require.NoError(t, err, "the row is visible on the replica right after the insert")
		assert.Equal(t, a.Name, got.Name)
		assert.Equal(t, a.Bio, got.Bio)
		assert.Equal(t, a.Tags, got.Tags)
		assert.True(t, a.CreatedAt.Equal(got.CreatedAt))

		var inRecovery bool
		require.NoError(t, db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
		assert.True(t, inRecovery, "reads run on lax's replica")
	}},
	{"ListByIDs", func(t *testing.T, ctx context.Context, db *sql.DB, q *authors.Queries) {
		var ids []int64
		for i := range 4 {
			a, err := q.CreateAuthor(ctx, authors.CreateAuthorParams{Name: fmt.Sprint("list", i)})
			require.NoError(t, err)
			ids = append(ids, a.ID)
		}
		got, err := q.ListAuthorsByIDs(ctx, []int64{ids[0], ids[2], ids[3]})
		require.NoError(t, err)
		require.Len(t, got, 3, "= ANY($1) with a pq.Array argument")
		assert.Equal(t, []string{"list0", "list2", "list3"}, []string{got[0].Name, got[1].Name, got[2].Name})
		assert.Nil(t, got[0].Tags, "a nil pq.Array is NULL, and NULL scans back as nil")
	}},
	{"UpdateDelete", func(t *testing.T, ctx context.Context, db *sql.DB, q *authors.Queries) {
		a, err := q.CreateAuthor(ctx, authors.CreateAuthorParams{Name: "Iain"})
		require.NoError(t, err)
		n, err := q.UpdateAuthorBio(ctx, authors.UpdateAuthorBioParams{ID: a.ID, Bio: sql.NullString{String: "Culture", Valid: true}})
		require.NoError(t, err)
		assert.EqualValues(t, 1, n, ":execrows")
		got, err := q.GetAuthor(ctx, a.ID)
		require.NoError(t, err)
		assert.Equal(t, sql.NullString{String: "Culture", Valid: true}, got.Bio, "the update is visible")

		require.NoError(t, q.DeleteAuthor(ctx, a.ID))
		_, err = q.GetAuthor(ctx, a.ID)
		assert.ErrorIs(t, err, sql.ErrNoRows, "the delete is visible")
	}},
	{"WithTx", func(t *testing.T, ctx context.Context, db *sql.DB, q *authors.Queries) {
		before, err := q.CountAuthors(ctx)
		require.NoError(t, err)
		a, err := createWithBio(ctx, db, q, "Ann", "Leckie")
		require.NoError(t, err)
		assert.Equal(t, "Leckie", a.Bio.String, "the transaction read its own update")
		got, err := q.GetAuthor(ctx, a.ID)
		require.NoError(t, err, "the commit is visible on the replica")
		assert.Equal(t, a.Bio, got.Bio)

		// A rolled-back transaction leaves nothing.
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = q.WithTx(tx).CreateAuthor(ctx, authors.CreateAuthorParams{Name: "gone"})
		require.NoError(t, err)
		require.NoError(t, tx.Rollback())
		after, err := q.CountAuthors(ctx)
		require.NoError(t, err)
		assert.Equal(t, before+1, after)
	}},
}
