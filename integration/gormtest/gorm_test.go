package gormtest_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/integration/internal/fixture"
)

// The models. User has many Posts.
type User struct {
	ID        uint
	Name      string
	Email     string `gorm:"uniqueIndex;not null"`
	Age       int
	Posts     []Post
	CreatedAt time.Time
	UpdatedAt time.Time
}

type Post struct {
	ID     uint
	UserID uint `gorm:"index"`
	Title  string
}

type Counter struct {
	ID uint
	N  int
}

type Blob struct {
	ID   uint
	Data []byte
}

// userV2 is User with one more column, for AutoMigrate's ALTER TABLE.
type userV2 struct {
	ID       uint
	Name     string
	Email    string `gorm:"uniqueIndex;not null"`
	Age      int
	Nickname string
}

func (userV2) TableName() string { return "users" }

var models = []any{&User{}, &Post{}, &Counter{}, &Blob{}, &Todo{}}

// opener opens GORM one of the two ways, with the given config.
type opener struct {
	name string
	open func(t *testing.T, cfg *gorm.Config) *gorm.DB
}

func openers(r *fixture.Regions) []opener {
	return []opener{
		{"DriverName", func(t *testing.T, cfg *gorm.Config) *gorm.DB {
			// The sql.Open path: the default node is lax, the first node
			// this process started (fixture.Start starts it first).
			db, err := gorm.Open(postgres.New(postgres.Config{
				DriverName: flypg.DriverName,
				DSN:        os.Getenv("DATABASE_URL"),
			}), cfg)
			require.NoError(t, err)
			closeWith(t, db)
			return db
		}},
		{"Conn", func(t *testing.T, cfg *gorm.Config) *gorm.DB {
			db, err := gorm.Open(postgres.New(postgres.Config{Conn: r.Lax.OpenDB()}), cfg)
			require.NoError(t, err)
			closeWith(t, db)
			return db
		}},
	}
}

func closeWith(t *testing.T, db *gorm.DB) {
	sqlDB, err := db.DB()
	require.NoError(t, err)
	t.Cleanup(func() { sqlDB.Close() })
}

// configs are the GORM configurations every scenario runs under.
func configs() []struct {
	name string
	cfg  func() *gorm.Config
} {
	quiet := logger.Default.LogMode(logger.Silent)
	return []struct {
		name string
		cfg  func() *gorm.Config
	}{
		{"DefaultTransaction", func() *gorm.Config { return &gorm.Config{TranslateError: true, Logger: quiet} }},
		{"SkipDefaultTransaction", func() *gorm.Config {
			return &gorm.Config{SkipDefaultTransaction: true, TranslateError: true, Logger: quiet}
		}},
		{"PrepareStmt", func() *gorm.Config { return &gorm.Config{PrepareStmt: true, TranslateError: true, Logger: quiet} }},
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestGORM runs every scenario with the app in lax, through both ways of
// opening GORM and under each configuration. The replica's replay is
// delayed, so every read right after a write sees it only because flypg
// waited; and no read in a scenario may go to the primary (which would see
// the write anyway).
func TestGORM(t *testing.T) {
	r := suite.Regions(t)
	for _, o := range openers(r) {
		t.Run(o.name, func(t *testing.T) {
			migrate(t, r, o.open(t, configs()[1].cfg()))
			for _, c := range configs() {
				t.Run(c.name, func(t *testing.T) {
					db := o.open(t, c.cfg()).WithContext(testCtx(t))
					tag := o.name + "-" + c.name
					for _, sc := range scenarios {
						t.Run(sc.name, func(t *testing.T) {
							counts := fixture.Watch(r.Lax)
							sc.run(t, db, tag)
							fixture.AssertRouted(t, counts())
						})
					}
					if c.name == "PrepareStmt" {
						pdb, ok := db.ConnPool.(*gorm.PreparedStmtDB)
						require.True(t, ok, "PrepareStmt wraps the pool in a PreparedStmtDB, got %T", db.ConnPool)
						assert.NotEmpty(t, pdb.Stmts.Keys(), "statements were prepared")
					}
				})
			}
			t.Run("Blob6MiB", func(t *testing.T) { blob(t, r, o.open(t, configs()[0].cfg())) })
			t.Run("ConcurrentTransactions", func(t *testing.T) { concurrentTx(t, r, o.open(t, configs()[0].cfg())) })
		})
	}
}

// migrate drops the tables (on the primary, outside flypg) and lets GORM
// create them through flypg; the migrator's next look at the catalog, on
// the replica, sees what it just did.
func migrate(t *testing.T, r *fixture.Regions, db *gorm.DB) {
	ctx := testCtx(t)
	db = db.WithContext(ctx)
	require.NoError(t, r.Exec(ctx, "DROP TABLE IF EXISTS posts, users, counters, blobs, todos"))
	counts := fixture.Watch(r.Lax)
	require.NoError(t, db.AutoMigrate(models...))
	for _, m := range models {
		assert.True(t, db.Migrator().HasTable(m), "%T's table is visible on the replica right after AutoMigrate", m)
	}
	require.NoError(t, db.AutoMigrate(&userV2{}), "AutoMigrate adds a column")
	assert.True(t, db.Migrator().HasColumn(&userV2{}, "Nickname"), "the new column is visible on the replica")
	assert.True(t, db.Migrator().HasIndex(&User{}, "Email"))
	got := counts()
	assert.Positive(t, got.Forwarded, "the DDL ran on the primary")
	assert.Zero(t, got.PrimaryReads, "the migrator read the catalog on the replica")

	var inRecovery bool
	require.NoError(t, db.Raw("SELECT pg_is_in_recovery()").Scan(&inRecovery).Error)
	assert.True(t, inRecovery, "reads run on lax's replica")
}

var scenarios = []struct {
	name string
	run  func(t *testing.T, db *gorm.DB, tag string)
}{
	{"CreateThenFirst", func(t *testing.T, db *gorm.DB, tag string) {
		u := User{Name: "Ada", Email: tag + "-ada@example.com", Age: 36}
		require.NoError(t, db.Create(&u).Error)
		require.NotZero(t, u.ID, "RETURNING id came back")
		var got User
		require.NoError(t, db.First(&got, u.ID).Error, "the row is visible on the replica right after Create")
		assert.Equal(t, "Ada", got.Name)
		assert.Equal(t, u.Email, got.Email)
	}},
	{"SaveUpdatesDelete", func(t *testing.T, db *gorm.DB, tag string) {
		u := User{Name: "Grace", Email: tag + "-grace@example.com"}
		require.NoError(t, db.Create(&u).Error)
		u.Name = "Grace H."
		require.NoError(t, db.Save(&u).Error)
		var got User
		require.NoError(t, db.First(&got, u.ID).Error)
		assert.Equal(t, "Grace H.", got.Name, "Save is visible")

		res := db.Model(&got).Updates(map[string]any{"age": 85})
		require.NoError(t, res.Error)
		assert.EqualValues(t, 1, res.RowsAffected)
		require.NoError(t, db.First(&got, u.ID).Error)
		assert.Equal(t, 85, got.Age, "Updates is visible")

		res = db.Model(&User{}).Where("email = ?", u.Email).Update("name", "G")
		require.NoError(t, res.Error)
		assert.EqualValues(t, 1, res.RowsAffected)
		require.NoError(t, db.First(&got, u.ID).Error)
		assert.Equal(t, "G", got.Name, "Update is visible")

		res = db.Delete(&User{}, u.ID)
		require.NoError(t, res.Error)
		assert.EqualValues(t, 1, res.RowsAffected)
		err := db.First(&got, u.ID).Error
		assert.ErrorIs(t, err, gorm.ErrRecordNotFound, "Delete is visible")
	}},
	{"Transaction", func(t *testing.T, db *gorm.DB, tag string) {
		a := User{Name: "A", Email: tag + "-tx-a@example.com"}
		b := User{Name: "B", Email: tag + "-tx-b@example.com"}
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&a).Error; err != nil {
				return err
			}
			if err := tx.Create(&b).Error; err != nil {
				return err
			}
			var inTx User
			// Inside the transaction, on the primary: its own writes.
			if err := tx.First(&inTx, a.ID).Error; err != nil {
				return fmt.Errorf("read own write in the transaction: %w", err)
			}
			// A nested transaction is a savepoint; rolling it back keeps
			// the rest.
			nested := tx.Transaction(func(tx2 *gorm.DB) error {
				if err := tx2.Create(&User{Name: "N", Email: tag + "-tx-nested@example.com"}).Error; err != nil {
					return err
				}
				return errors.New("roll the savepoint back")
			})
			if nested == nil {
				return errors.New("the nested transaction should have failed")
			}
			return nil
		})
		require.NoError(t, err)
		var n int64
		require.NoError(t, db.Model(&User{}).Where("email IN ?", []string{a.Email, b.Email}).Count(&n).Error)
		assert.EqualValues(t, 2, n, "the committed transaction is visible on the replica")
		require.NoError(t, db.Model(&User{}).Where("email = ?", tag+"-tx-nested@example.com").Count(&n).Error)
		assert.Zero(t, n, "the rolled-back savepoint left nothing")

		// A read-only transaction runs on the local replica, and sees the
		// commit too.
		err = db.Transaction(func(tx *gorm.DB) error {
			var inRecovery bool
			if err := tx.Raw("SELECT pg_is_in_recovery()").Scan(&inRecovery).Error; err != nil {
				return err
			}
			if !inRecovery {
				return errors.New("a read-only transaction ran on the primary")
			}
			return tx.Model(&User{}).Where("email IN ?", []string{a.Email, b.Email}).Count(&n).Error
		}, &sql.TxOptions{ReadOnly: true})
		require.NoError(t, err)
		assert.EqualValues(t, 2, n)

		boom := errors.New("boom")
		err = db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&User{Name: "R", Email: tag + "-tx-rolled@example.com"}).Error; err != nil {
				return err
			}
			return boom
		})
		require.ErrorIs(t, err, boom)
		require.NoError(t, db.Model(&User{}).Where("email = ?", tag+"-tx-rolled@example.com").Count(&n).Error)
		assert.Zero(t, n, "the rolled-back transaction left nothing")
	}},
	{"TranslateError", func(t *testing.T, db *gorm.DB, tag string) {
		email := tag + "-dup@example.com"
		require.NoError(t, db.Create(&User{Name: "first", Email: email}).Error)
		err := db.Create(&User{Name: "second", Email: email}).Error
		require.Error(t, err)
		assert.ErrorIs(t, err, gorm.ErrDuplicatedKey, "the primary's unique violation is translated")

		err = db.Transaction(func(tx *gorm.DB) error { return tx.Create(&User{Name: "third", Email: email}).Error })
		assert.ErrorIs(t, err, gorm.ErrDuplicatedKey, "also inside a transaction")

		// Without TranslateError the error is pgx's own.
		raw, err := gorm.Open(postgres.New(postgres.Config{Conn: db.ConnPool}), &gorm.Config{Logger: logger.Discard})
		require.NoError(t, err)
		err = raw.WithContext(db.Statement.Context).Create(&User{Name: "fourth", Email: email}).Error
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		assert.Equal(t, "23505", pgErr.Code)
		assert.Equal(t, "users", pgErr.TableName)
		assert.Equal(t, "idx_users_email", pgErr.ConstraintName)

		var n int64
		require.NoError(t, db.Model(&User{}).Where("email = ?", email).Count(&n).Error)
		assert.EqualValues(t, 1, n, "only the first row")
	}},
	{"FirstOrCreate", func(t *testing.T, db *gorm.DB, tag string) {
		email := tag + "-foc@example.com"
		var first, second User
		res := db.Where(User{Email: email}).Attrs(User{Name: "Linus"}).FirstOrCreate(&first)
		require.NoError(t, res.Error)
		assert.EqualValues(t, 1, res.RowsAffected, "created")
		// Right after: the replica must find it, or this creates a second
		// row (or fails on the unique index).
		res = db.Where(User{Email: email}).Attrs(User{Name: "other"}).FirstOrCreate(&second)
		require.NoError(t, res.Error)
		assert.Equal(t, first.ID, second.ID, "found, not created again")
		assert.Equal(t, "Linus", second.Name)
	}},
	{"CreateInBatches", func(t *testing.T, db *gorm.DB, tag string) {
		users := make([]User, 250)
		for i := range users {
			users[i] = User{Name: fmt.Sprint("batch", i), Email: fmt.Sprintf("%s-batch-%d@example.com", tag, i)}
		}
		res := db.CreateInBatches(users, 100)
		require.NoError(t, res.Error)
		assert.EqualValues(t, 250, res.RowsAffected)
		for _, u := range users {
			require.NotZero(t, u.ID, "every row got its id back")
		}
		var n int64
		require.NoError(t, db.Model(&User{}).Where("email LIKE ?", tag+"-batch-%").Count(&n).Error)
		assert.EqualValues(t, 250, n, "the whole batch is visible")
	}},
	{"Locking", func(t *testing.T, db *gorm.DB, tag string) {
		c := Counter{}
		require.NoError(t, db.Create(&c).Error)
		// Autocommit SELECT … FOR UPDATE is a write: the replica would
		// refuse it (25006); flypg runs it on the primary.
		var locked Counter
		require.NoError(t, db.Clauses(clause.Locking{Strength: "UPDATE"}).First(&locked, c.ID).Error)
		assert.Equal(t, c.ID, locked.ID)

		// Concurrent read-modify-write under FOR UPDATE, each in a
		// transaction on the primary: no lost update.
		const workers = 8
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				errs <- db.Transaction(func(tx *gorm.DB) error {
					var cur Counter
					if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).First(&cur, c.ID).Error; err != nil {
						return err
					}
					return tx.Model(&cur).Update("n", cur.N+1).Error
				})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		var got Counter
		require.NoError(t, db.First(&got, c.ID).Error)
		assert.Equal(t, workers, got.N, "every increment held the row lock")
	}},
	{"Associations", func(t *testing.T, db *gorm.DB, tag string) {
		u := User{Name: "Barbara", Email: tag + "-assoc@example.com",
			Posts: []Post{{Title: "one"}, {Title: "two"}, {Title: "three"}}}
		require.NoError(t, db.Create(&u).Error)
		var got User
		require.NoError(t, db.Preload("Posts").First(&got, u.ID).Error)
		assert.Len(t, got.Posts, 3, "the posts created with the user are visible")

		require.NoError(t, db.Model(&got).Association("Posts").Append(&Post{Title: "four"}))
		var again User
		require.NoError(t, db.Preload("Posts", func(db *gorm.DB) *gorm.DB { return db.Order("id") }).First(&again, u.ID).Error)
		require.Len(t, again.Posts, 4, "the appended post is visible")
		assert.Equal(t, "four", again.Posts[3].Title)
		assert.EqualValues(t, 4, db.Model(&again).Association("Posts").Count())
	}},
}

// blob writes a 6 MiB []byte from the replica region and reads it back.
func blob(t *testing.T, r *fixture.Regions, db *gorm.DB) {
	db = db.WithContext(testCtx(t))
	data := make([]byte, 6<<20)
	_, _ = rand.Read(data)
	counts := fixture.Watch(r.Lax)
	b := Blob{Data: data}
	require.NoError(t, db.Create(&b).Error)
	var got Blob
	require.NoError(t, db.First(&got, b.ID).Error)
	assert.Equal(t, len(data), len(got.Data))
	assert.True(t, string(data) == string(got.Data), "the blob round-trips byte for byte")
	c := counts()
	assert.Positive(t, c.Forwarded)
	assert.Zero(t, c.PrimaryReads, "read back on the replica")
}

// concurrentTx runs 80 GORM transactions at once from the replica region
// (more than a peer's remote-transaction limit and the serving pool, so
// some queue): all succeed, and every row is visible when they return.
func concurrentTx(t *testing.T, r *fixture.Regions, db *gorm.DB) {
	db = db.WithContext(testCtx(t))
	const n = 80
	var wg sync.WaitGroup
	errs := make([]error, n)
	ids := make([]uint, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = db.Transaction(func(tx *gorm.DB) error {
				c := Counter{N: 1000 + i}
				if err := tx.Create(&c).Error; err != nil {
					return err
				}
				ids[i] = c.ID
				return tx.Model(&c).Update("n", gorm.Expr("n + 1")).Error
			})
			if errs[i] != nil {
				return
			}
			// Each transaction's own result is visible to its caller.
			var c Counter
			if err := db.First(&c, ids[i]).Error; err != nil {
				errs[i] = fmt.Errorf("read back: %w", err)
			} else if c.N != 1001+i {
				errs[i] = fmt.Errorf("read back n=%d, want %d", c.N, 1001+i)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "transaction %d", i)
	}
	var count int64
	require.NoError(t, db.Model(&Counter{}).Where("n > 1000 AND n <= ?", 1000+n).Count(&count).Error)
	assert.EqualValues(t, n, count)
}

// TestDriverNameUsesDefaultNode pins down what the DriverName form relies
// on: sql.Open("flypg", DATABASE_URL) routes through the first node the
// process started (lax here), so GORM's reads run on lax's replica.
func TestDriverNameUsesDefaultNode(t *testing.T) {
	r := suite.Regions(t)
	db, err := gorm.Open(postgres.New(postgres.Config{DriverName: flypg.DriverName, DSN: r.PrimaryURL}),
		&gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	closeWith(t, db)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	assert.IsType(t, &flypg.Driver{}, sqlDB.Driver())
	var inRecovery bool
	require.NoError(t, db.Raw("SELECT pg_is_in_recovery()").Scan(&inRecovery).Error)
	assert.True(t, inRecovery, "the primary's URL, opened through the default node lax, reads on lax's replica")
}

// TestWithoutAwaitReadsAreStale is the control for the scenarios above:
// the same Create + First under flypg.NoAwait misses the row on the
// delayed replica, so a GORM path that lost flypg's await would fail them.
func TestWithoutAwaitReadsAreStale(t *testing.T) {
	r := suite.Regions(t)
	for _, c := range configs()[:2] {
		t.Run(c.name, func(t *testing.T) {
			gdb, err := openGORM(r.Lax)
			require.NoError(t, err)
			closeWith(t, gdb)
			gdb.Config.SkipDefaultTransaction = c.name == "SkipDefaultTransaction"
			gdb.Logger = logger.Discard
			ctx := testCtx(t)
			require.NoError(t, gdb.WithContext(ctx).AutoMigrate(&Todo{}))
			db := gdb.WithContext(flypg.NoAwait(ctx))
			stale := false
			for i := 0; i < 5 && !stale; i++ {
				todo := Todo{Title: fmt.Sprint("noawait-", c.name, i)}
				require.NoError(t, db.Create(&todo).Error)
				var got Todo
				err := db.First(&got, todo.ID).Error
				stale = errors.Is(err, gorm.ErrRecordNotFound)
			}
			assert.True(t, stale, "without the await, the replica does not have the row yet")
		})
	}
}

// TestDeadlineCrossesTheLink: a GORM call's context deadline bounds a
// forwarded write, and cancels it on the primary (the row never commits).
func TestDeadlineCrossesTheLink(t *testing.T) {
	r := suite.Regions(t)
	gdb, err := openGORM(r.Lax)
	require.NoError(t, err)
	closeWith(t, gdb)
	gdb.Logger = logger.Discard
	require.NoError(t, gdb.WithContext(testCtx(t)).AutoMigrate(&Todo{}))

	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = gdb.WithContext(ctx).Exec("INSERT INTO todos (title) SELECT 'deadline' FROM pg_sleep(10)").Error
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second, "the caller got its answer at its deadline, not after the statement")

	// The statement was cancelled on the primary: it stops running, and
	// nothing committed.
	check := testCtx(t)
	require.Eventually(t, func() bool {
		var running int
		err := r.Primary.QueryRowContext(check,
			"SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO todos (title) SELECT ''deadline''%'").Scan(&running)
		return err == nil && running == 0
	}, 5*time.Second, 20*time.Millisecond, "the primary stopped running the statement")
	var n int64
	require.NoError(t, r.Sync(check))
	require.NoError(t, r.Primary.QueryRowContext(check, "SELECT count(*) FROM todos WHERE title = 'deadline'").Scan(&n))
	assert.Zero(t, n)
}

// TestAwaitErrorThroughGORM: when the write committed but the local
// replica could not replay it before the deadline, GORM hands back flypg's
// *AwaitError untouched — the caller can tell "committed, not yet visible"
// from "failed", and, for a Create without GORM's transaction, read the
// RETURNING row from it instead of writing again.
func TestAwaitErrorThroughGORM(t *testing.T) {
	r := suite.Regions(t)
	gdb, err := openGORM(r.Lax)
	require.NoError(t, err)
	closeWith(t, gdb)
	gdb.Logger = logger.Discard
	require.NoError(t, gdb.WithContext(testCtx(t)).AutoMigrate(&Todo{}))

	require.NoError(t, r.PauseReplay(testCtx(t)))
	t.Cleanup(func() { assert.NoError(t, r.ResumeReplay(context.Background())) })
	for _, skip := range []bool{true, false} {
		t.Run(fmt.Sprint("SkipDefaultTransaction=", skip), func(t *testing.T) {
			db := gdb.Session(&gorm.Session{})
			db.Config.SkipDefaultTransaction = skip
			ctx, cancel := context.WithTimeout(testCtx(t), time.Second)
			defer cancel()
			title := fmt.Sprint("await-timeout-", skip)
			err := db.WithContext(ctx).Create(&Todo{Title: title}).Error
			var ae *flypg.AwaitError
			require.ErrorAs(t, err, &ae, "a committed write whose replay did not come in time")
			assert.ErrorIs(t, err, flypg.ErrAwaitTimeout)
			assert.NotZero(t, ae.LSN)
			var ids []int64
			rows, err := r.Primary.QueryContext(testCtx(t), "SELECT id FROM todos WHERE title = $1", title)
			require.NoError(t, err)
			for rows.Next() {
				var id int64
				require.NoError(t, rows.Scan(&id))
				ids = append(ids, id)
			}
			require.NoError(t, rows.Err())
			require.Len(t, ids, 1, "it did commit, once")
			if skip {
				// The autocommit INSERT … RETURNING's result travels in the error.
				assert.Equal(t, []string{"id"}, ae.Columns)
				require.Len(t, ae.Rows, 1)
				assert.Equal(t, []any{ids[0]}, ae.Rows[0], "the RETURNING row, as pgx returns it")
			}
		})
	}
}
