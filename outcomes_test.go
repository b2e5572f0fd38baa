package flypg_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/pgcluster"
)

type crashOne struct{ Title string }

func init() {
	flypg.RegisterProc("test.crash-insert", func(ctx context.Context, db *sql.DB, req crashOne) (int64, error) {
		var id int64
		err := db.QueryRowContext(ctx, "INSERT INTO lost (v) VALUES ($1) RETURNING id", req.Title).Scan(&id)
		return id, err
	})
}

// A write that committed but whose commit position could not be read —
// the primary crashed right after COMMIT returned — is *CommittedError
// (errors.Is ErrCommitted), carrying its result: never a plain error that
// reads as "not committed". Each kind of write, with the primary crashed
// at that exact point.
func TestCommittedButPositionLost(t *testing.T) {
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: 1})
	syd := startNode(t, "syd", c.Primary.DSN(), nil, nil)
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	ctx := testCtx(t)
	require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE lost (id bigserial PRIMARY KEY, v text)"))
	require.NoError(t, c.Sync(ctx))
	db := lax.OpenDB()
	defer db.Close()
	crash := func(context.Context) {
		flypg.SetAfterCommit(syd, nil)
		require.NoError(t, c.Primary.Crash())
	}
	cases := []struct {
		name  string
		write func(ctx context.Context, v string) (rows int64, err error)
	}{
		{"exec", func(ctx context.Context, v string) (int64, error) {
			res, err := db.ExecContext(ctx, "INSERT INTO lost (v) VALUES ($1)", v)
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		}},
		{"returning", func(ctx context.Context, v string) (int64, error) {
			var id int64
			return 1, db.QueryRowContext(ctx, "INSERT INTO lost (v) VALUES ($1) RETURNING id", v).Scan(&id)
		}},
		{"transaction", func(ctx context.Context, v string) (int64, error) {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return 0, err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO lost (v) VALUES ($1)", v); err != nil {
				_ = tx.Rollback()
				return 0, err
			}
			return 1, tx.Commit()
		}},
		{"procedure", func(ctx context.Context, v string) (int64, error) {
			_, err := flypg.CallPrimary[crashOne, int64](ctx, lax, "test.crash-insert", crashOne{Title: v})
			return 1, err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, lax.WaitReady(ctx))
			flypg.SetAfterCommit(syd, crash)
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			n, err := tc.write(wctx, tc.name)
			require.Error(t, err, "the position could not be read")
			assert.ErrorIs(t, err, flypg.ErrCommitted, "committed: %v", err)
			assert.False(t, errors.Is(err, flypg.ErrNoPrimary) || errors.Is(err, flypg.ErrUnknownOutcome), "%v", err)
			var ce *flypg.CommittedError
			if tc.name == "exec" && assert.ErrorAs(t, err, &ce) {
				assert.Equal(t, int64(1), ce.RowsAffected, "the result comes with the error")
			}
			_ = n
			require.NoError(t, c.Primary.Start(ctx))
			var count int
			require.NoError(t, c.Primary.Exec(ctx, "SELECT 1"))
			s, err := c.Primary.QueryString(ctx, "SELECT count(*) FROM lost WHERE v = $1", tc.name)
			require.NoError(t, err)
			_, _ = fmt.Sscan(s, &count)
			assert.Equal(t, 1, count, "the write is there: the error told the truth")
		})
	}
}

// An await that times out returns an *AwaitError carrying the write's
// result, so nobody runs the write again to learn it; under
// AwaitTimeoutSucceed the write returns success, counted.
func TestAwaitErrorCarriesTheResult(t *testing.T) {
	r := startRegions(t, func(cfg *flypg.Config) { cfg.AwaitTimeout = 300 * time.Millisecond })
	r.exec(t, "DROP TABLE IF EXISTS aw; CREATE TABLE aw (id bigserial PRIMARY KEY, v text)")
	ctx := testCtx(t)
	require.NoError(t, r.c.Replicas[0].PauseReplay(ctx))
	defer func() { require.NoError(t, r.c.Replicas[0].ResumeReplay(ctx)) }()

	_, err := r.laxDB.ExecContext(ctx, "INSERT INTO aw (v) VALUES ('a'), ('b')")
	var ae *flypg.AwaitError
	require.ErrorAs(t, err, &ae)
	assert.ErrorIs(t, err, flypg.ErrAwaitTimeout)
	assert.Equal(t, int64(2), ae.RowsAffected)
	assert.NotZero(t, ae.LSN)

	_, err = r.laxDB.QueryContext(ctx, "INSERT INTO aw (v) VALUES ('c') RETURNING id, v")
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, []string{"id", "v"}, ae.Columns)
	require.Len(t, ae.Rows, 1)
	var id int64
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT id FROM aw WHERE v = 'c'").Scan(&id))
	assert.Equal(t, []any{id, "c"}, ae.Rows[0], "the RETURNING row, as the driver returns it")
	assert.Equal(t, int64(1), ae.RowsAffected)

	succeed := startNode(t, "lax2", r.c.Replicas[0].DSN(), []string{r.syd.GossipAddr()}, func(cfg *flypg.Config) {
		cfg.AwaitTimeout = 200 * time.Millisecond
		cfg.AwaitTimeoutPolicy = flypg.AwaitTimeoutSucceed
	})
	require.NoError(t, succeed.WaitReady(ctx))
	sdb := succeed.OpenDB()
	defer sdb.Close()
	res, err := sdb.ExecContext(ctx, "INSERT INTO aw (v) VALUES ('d')")
	require.NoError(t, err, "AwaitTimeoutSucceed returns success")
	n, _ := res.RowsAffected()
	assert.Equal(t, int64(1), n)
	assert.Equal(t, int64(1), succeed.Stats().AwaitTimeouts, "and counts it")
}

// Size is not a failure mode: requests and results far larger than the
// link's 4 MiB frame cross in pieces.
func TestLargeRequestsAndResults(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS blobs; CREATE TABLE blobs (id int PRIMARY KEY, b bytea, t text)")
	ctx := testCtx(t)
	blob := bytes.Repeat([]byte("0123456789abcdef"), 6<<20/16) // 6 MiB
	blob[12345] = 0xff
	_, err := r.laxDB.ExecContext(ctx, "INSERT INTO blobs VALUES (1, $1, 'x')", blob)
	require.NoError(t, err, "a 6 MiB argument")
	var got []byte
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "SELECT b FROM blobs WHERE id = 1").Scan(&got))
	assert.True(t, bytes.Equal(blob, got), "stored exactly, and visible at once")

	// Past the link's request limit (64 MiB): refused before anything is
	// sent, and says so.
	_, err = r.laxDB.ExecContext(ctx, "INSERT INTO blobs VALUES (99, $1, 'x')", make([]byte, 65<<20))
	assert.ErrorIs(t, err, flypg.ErrTooLarge)
	assert.False(t, errors.Is(err, flypg.ErrUnknownOutcome))

	// A 6 MiB RETURNING, awaited before it is handed over.
	var back []byte
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "UPDATE blobs SET t = 'y' WHERE id = 1 RETURNING b").Scan(&back))
	assert.True(t, bytes.Equal(blob, back))

	// A 40 MiB forwarded read, streamed.
	_, err = r.laxDB.ExecContext(ctx, "INSERT INTO blobs SELECT g, NULL, repeat(md5(g::text), 32) FROM generate_series(2, 40001) g")
	require.NoError(t, err)
	rows, err := r.laxDB.QueryContext(flypg.OnPrimary(ctx), "SELECT id, t FROM blobs WHERE id > 1 ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	n, want := 0, 2
	for rows.Next() {
		var id int
		var s string
		require.NoError(t, rows.Scan(&id, &s))
		require.Equal(t, want, id)
		require.Len(t, s, 1024)
		want++
		n++
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, 40000, n)
	assert.NotZero(t, r.lax.Stats().PrimaryReads)

	// A huge RETURNING streams past the buffer, and is awaited at its end.
	rows, err = r.laxDB.QueryContext(ctx, "UPDATE blobs SET t = t || 'z' WHERE id > 1 RETURNING id, t")
	require.NoError(t, err)
	n = 0
	for rows.Next() {
		n++
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	assert.Equal(t, 40000, n)
	var z int
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "SELECT count(*) FROM blobs WHERE t LIKE '%z'").Scan(&z))
	assert.Equal(t, 40000, z, "awaited: the replica shows the update")
}
