package sqlxtest_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/integration/internal/fixture"
)

type person struct {
	ID    int64  `db:"id"`
	Name  string `db:"name"`
	Email string `db:"email"`
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func setup(t *testing.T, r *fixture.Regions) {
	require.NoError(t, r.Exec(testCtx(t), `DROP TABLE IF EXISTS people;
		CREATE TABLE people (id bigserial PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE)`))
}

// TestBindType shows the gotcha and both fixes: sqlx does not know the
// name "flypg", so a query written with ? keeps its ? (and PostgreSQL
// refuses it); under "pgx", or after BindDriver, it becomes $1.
func TestBindType(t *testing.T) {
	r := suite.Regions(t)
	ctx := testCtx(t)
	const q = "SELECT count(*) FROM pg_class WHERE relname = ?"

	require.Equal(t, sqlx.UNKNOWN, flypgBindType, "sqlx does not know the name flypg")
	unbound := sqlx.NewDb(r.Lax.OpenDB(), "some-unknown-name")
	t.Cleanup(func() { unbound.Close() })
	assert.Equal(t, q, sqlx.Rebind(flypgBindType, q), "Rebind leaves ? alone for an unknown driver name")
	var n int
	err := unbound.GetContext(ctx, &n, unbound.Rebind(q), "pg_class")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "PostgreSQL refuses the ? placeholder")
	assert.Equal(t, "42601", pgErr.Code, "syntax error")

	pgxNamed := openSqlx(r.Lax)
	t.Cleanup(func() { pgxNamed.Close() })
	assert.Equal(t, "SELECT count(*) FROM pg_class WHERE relname = $1", pgxNamed.Rebind(q))
	require.NoError(t, pgxNamed.GetContext(ctx, &n, pgxNamed.Rebind(q), "pg_class"))
	assert.Equal(t, 1, n)

	sqlx.BindDriver(flypg.DriverName, sqlx.DOLLAR)
	opened, err := sqlx.Open(flypg.DriverName, os.Getenv("DATABASE_URL"))
	require.NoError(t, err)
	t.Cleanup(func() { opened.Close() })
	assert.Equal(t, sqlx.DOLLAR, sqlx.BindType(opened.DriverName()))
	require.NoError(t, opened.GetContext(ctx, &n, opened.Rebind(q), "pg_class"))
	assert.Equal(t, 1, n)
}

// TestSqlx runs sqlx's API with the app in lax, through both recipes.
// Every read follows a write at once while the replica's replay is
// delayed: it sees the write only because flypg waited.
func TestSqlx(t *testing.T) {
	r := suite.Regions(t)
	sqlx.BindDriver(flypg.DriverName, sqlx.DOLLAR)
	for _, o := range []struct {
		name string
		open func(t *testing.T) *sqlx.DB
	}{
		{"NewDbPgx", func(t *testing.T) *sqlx.DB { return openSqlx(r.Lax) }},
		{"OpenFlypg", func(t *testing.T) *sqlx.DB {
			db, err := sqlx.Open(flypg.DriverName, os.Getenv("DATABASE_URL"))
			require.NoError(t, err)
			return db
		}},
	} {
		t.Run(o.name, func(t *testing.T) {
			setup(t, r)
			db := o.open(t)
			t.Cleanup(func() { db.Close() })
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
	run  func(t *testing.T, ctx context.Context, db *sqlx.DB, tag string)
}{
	{"ExecThenGet", func(t *testing.T, ctx context.Context, db *sqlx.DB, tag string) {
		res, err := db.ExecContext(ctx, db.Rebind("INSERT INTO people (name, email) VALUES (?, ?)"), "Ada", tag+"@example.com")
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
		var p person
		require.NoError(t, db.GetContext(ctx, &p, db.Rebind("SELECT * FROM people WHERE email = ?"), tag+"@example.com"),
			"the row is visible on the replica right after the insert")
		assert.Equal(t, "Ada", p.Name)

		var inRecovery bool
		require.NoError(t, db.GetContext(ctx, &inRecovery, "SELECT pg_is_in_recovery()"))
		assert.True(t, inRecovery, "reads run on lax's replica")
	}},
	{"NamedExecThenSelect", func(t *testing.T, ctx context.Context, db *sqlx.DB, tag string) {
		_, err := db.NamedExecContext(ctx, "INSERT INTO people (name, email) VALUES (:name, :email)",
			person{Name: "one", Email: tag + "-1@example.com"})
		require.NoError(t, err)
		batch := []person{{Name: "two", Email: tag + "-2@example.com"}, {Name: "three", Email: tag + "-3@example.com"}}
		res, err := db.NamedExecContext(ctx, "INSERT INTO people (name, email) VALUES (:name, :email)", batch)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		assert.EqualValues(t, 2, n, "a slice becomes one multi-row INSERT")
		var got []person
		require.NoError(t, db.SelectContext(ctx, &got, "SELECT * FROM people WHERE email LIKE $1 ORDER BY id", tag+"-%"))
		require.Len(t, got, 3)
		assert.Equal(t, []string{"one", "two", "three"}, []string{got[0].Name, got[1].Name, got[2].Name})
	}},
	{"NamedQueryReturning", func(t *testing.T, ctx context.Context, db *sqlx.DB, tag string) {
		rows, err := db.NamedQueryContext(ctx, "INSERT INTO people (name, email) VALUES (:name, :email) RETURNING id",
			map[string]any{"name": "Grace", "email": tag + "@example.com"})
		require.NoError(t, err)
		var id int64
		require.True(t, rows.Next(), "RETURNING gives a row")
		require.NoError(t, rows.Scan(&id))
		require.False(t, rows.Next())
		require.NoError(t, rows.Close())
		var name string
		require.NoError(t, db.GetContext(ctx, &name, "SELECT name FROM people WHERE id = $1", id))
		assert.Equal(t, "Grace", name)
	}},
	{"PrepareNamed", func(t *testing.T, ctx context.Context, db *sqlx.DB, tag string) {
		ins, err := db.PrepareNamedContext(ctx, "INSERT INTO people (name, email) VALUES (:name, :email)")
		require.NoError(t, err, "a write prepares")
		defer ins.Close()
		sel, err := db.PreparexContext(ctx, "SELECT * FROM people WHERE email = $1")
		require.NoError(t, err)
		defer sel.Close()
		for i := range 3 {
			p := person{Name: fmt.Sprint("prep", i), Email: fmt.Sprintf("%s-%d@example.com", tag, i)}
			_, err := ins.ExecContext(ctx, p)
			require.NoError(t, err)
			var got person
			require.NoError(t, sel.GetContext(ctx, &got, p.Email), "each prepared insert is visible at once")
			assert.Equal(t, p.Name, got.Name)
		}
	}},
	{"In", func(t *testing.T, ctx context.Context, db *sqlx.DB, tag string) {
		var ids []int64
		for i := range 4 {
			var id int64
			require.NoError(t, db.QueryRowxContext(ctx, "INSERT INTO people (name, email) VALUES ($1, $2) RETURNING id",
				fmt.Sprint("in", i), fmt.Sprintf("%s-%d@example.com", tag, i)).Scan(&id))
			ids = append(ids, id)
		}
		q, args, err := sqlx.In("SELECT name FROM people WHERE id IN (?) ORDER BY id", ids[1:3])
		require.NoError(t, err)
		var names []string
		require.NoError(t, db.SelectContext(ctx, &names, db.Rebind(q), args...))
		assert.Equal(t, []string{"in1", "in2"}, names)

		// The same with PostgreSQL's own array comparison: one parameter.
		require.NoError(t, db.SelectContext(ctx, &names, "SELECT name FROM people WHERE id = ANY($1) ORDER BY id", ids[2:]))
		assert.Equal(t, []string{"in2", "in3"}, names)
	}},
	{"MustBeginCommit", func(t *testing.T, ctx context.Context, db *sqlx.DB, tag string) {
		tx := db.MustBeginTx(ctx, nil)
		tx.MustExecContext(ctx, "INSERT INTO people (name, email) VALUES ($1, $2)", "tx", tag+"@example.com")
		var inTx person
		// Inside the read-write transaction, on the primary: its own write.
		require.NoError(t, tx.GetContext(ctx, &inTx, "SELECT * FROM people WHERE email = $1", tag+"@example.com"))
		var inRecovery bool
		require.NoError(t, tx.GetContext(ctx, &inRecovery, "SELECT pg_is_in_recovery()"))
		assert.False(t, inRecovery, "a read-write transaction runs on the primary")
		require.NoError(t, tx.Commit())
		var got person
		require.NoError(t, db.GetContext(ctx, &got, "SELECT * FROM people WHERE email = $1", tag+"@example.com"),
			"the commit is visible on the replica")
		assert.Equal(t, inTx.ID, got.ID)
	}},
	{"BeginxRollback", func(t *testing.T, ctx context.Context, db *sqlx.DB, tag string) {
		// Something to await, so the scenario's routing check holds.
		db.MustExecContext(ctx, "INSERT INTO people (name, email) VALUES ($1, $2)", "kept", tag+"-kept@example.com")
		tx, err := db.Beginx()
		require.NoError(t, err)
		_, err = tx.NamedExec("INSERT INTO people (name, email) VALUES (:name, :email)", person{Name: "gone", Email: tag + "@example.com"})
		require.NoError(t, err)
		require.NoError(t, tx.Rollback())
		var n int
		require.NoError(t, db.GetContext(ctx, &n, "SELECT count(*) FROM people WHERE email LIKE $1", tag+"%"))
		assert.Equal(t, 1, n, "the kept row only")
	}},
	{"ReadOnlyTx", func(t *testing.T, ctx context.Context, db *sqlx.DB, tag string) {
		db.MustExecContext(ctx, "INSERT INTO people (name, email) VALUES ($1, $2)", "ro", tag+"@example.com")
		var n int
		require.NoError(t, db.GetContext(ctx, &n, "SELECT count(*) FROM people WHERE email = $1", tag+"@example.com"))
		require.Equal(t, 1, n)
		tx, err := db.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
		require.NoError(t, err)
		defer tx.Rollback()
		var inRecovery bool
		require.NoError(t, tx.GetContext(ctx, &inRecovery, "SELECT pg_is_in_recovery()"))
		assert.True(t, inRecovery, "a read-only transaction runs on the replica")
		var p person
		require.NoError(t, tx.GetContext(ctx, &p, "SELECT * FROM people WHERE email = $1", tag+"@example.com"))
		assert.Equal(t, "ro", p.Name)
		require.NoError(t, tx.Commit())
	}},
	{"UniqueViolation", func(t *testing.T, ctx context.Context, db *sqlx.DB, tag string) {
		db.MustExecContext(ctx, "INSERT INTO people (name, email) VALUES ($1, $2)", "a", tag+"@example.com")
		_, err := db.ExecContext(ctx, "INSERT INTO people (name, email) VALUES ($1, $2)", "b", tag+"@example.com")
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "pgx's own error, got %T: %v", err, err)
		assert.Equal(t, "23505", pgErr.Code)
		assert.Equal(t, "people_email_key", pgErr.ConstraintName)
		var n int
		require.NoError(t, db.GetContext(ctx, &n, "SELECT count(*) FROM people WHERE email = $1", tag+"@example.com"))
		assert.Equal(t, 1, n)
	}},
}
