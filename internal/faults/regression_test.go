package faults

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/checker"
	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/internal/wan"
)

// Minimal, deterministic reproductions of the root package's bugs that the
// fault tests found under load (each failed before its fix); each says
// what DESIGN promises.

// A read-only transaction in a replica region while the local replica is
// down runs on the primary (DESIGN: "reads are forwarded to the primary");
// its Commit must return nil, not an *AwaitError — nothing was written.
func TestBugReadOnlyTxCommitWhileReplicaDown(t *testing.T) {
	e := newEnv(t, pgcluster.Options{})
	syd := e.node("syd-1", "syd", e.c.Primary.DSN(), nil, nil)
	lax := e.node("lax-1", "lax", e.c.Replicas[0].DSN(), []string{syd.GossipAddr()}, func(c *flypg.Config) {
		c.RoleCheckInterval = 100 * time.Millisecond
	})
	e.ready(lax)
	db := e.openDB(lax, 4)
	require.NoError(t, db.PingContext(e.ctx))
	require.NoError(t, e.c.Replicas[0].Stop())
	deadline := time.Now().Add(10 * time.Second)
	for lax.Stats().Databases[0].Role != "unreachable" {
		require.True(t, time.Now().Before(deadline), "lax notices its replica is down")
		time.Sleep(20 * time.Millisecond)
	}
	db.SetMaxIdleConns(0) // no pooled connection to the stopped replica
	tx, err := db.BeginTx(e.ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	var one int
	require.NoError(t, tx.QueryRowContext(e.ctx, "SELECT 1").Scan(&one))
	err = tx.Commit()
	assert.NoError(t, err, "a read-only transaction commits nothing and awaits nothing")
}

// A node just started, whose local database is up, answers CallPrimary
// with *AwaitError(ErrLocalUnavailable) until its first role check has
// run: "unreachable" stands in for "not checked yet".
func TestBugCallPrimaryBeforeFirstRoleCheck(t *testing.T) {
	e := newEnv(t, pgcluster.Options{})
	require.NoError(t, e.c.Primary.Exec(e.ctx, checkerTable))
	require.NoError(t, e.c.Sync(e.ctx))
	syd := e.node("syd-1", "syd", e.c.Primary.DSN(), nil, nil)
	var failed []string
	for i := range 5 {
		lax := e.node("lax-"+strconv.Itoa(i), "lax", e.c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
		e.ready(lax)
		_, err := flypg.CallPrimary[checker.CallRequest, int64](e.ctx, lax, checker.ProcName,
			checker.CallRequest{Table: checker.DefaultTable, Run: "bug", Client: i, Seq: 0, Rows: 1})
		if err != nil {
			failed = append(failed, err.Error())
		}
		require.NoError(t, lax.Close())
	}
	assert.Empty(t, failed, "the first CallPrimary of a fresh node is awaited like any other")
}

// checkerTable is the checker's table, for tests that call its procedure
// without running it.
const checkerTable = `CREATE TABLE IF NOT EXISTS flypg_checker (id bigserial PRIMARY KEY, run text NOT NULL,
	client int NOT NULL, seq int NOT NULL, idx int NOT NULL, op text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`

// A COMMIT cut off by the primary's crash has an unknown outcome; a remote
// transaction's Commit (plain or pipelined) returns a plain error
// ("flypg: on the primary: unexpected EOF"), which by DESIGN's rules reads
// "not committed". The autocommit case is right (ErrUnknownOutcome) and
// is here for contrast. The COMMIT is made slow with a deferred constraint
// trigger that sleeps, and the primary crashes during it.
func TestBugCommitCutByCrash(t *testing.T) {
	e := newEnv(t, pgcluster.Options{})
	require.NoError(t, e.c.Primary.Exec(e.ctx, `CREATE TABLE slow (v text);
		CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN PERFORM pg_sleep(3); RETURN NULL; END';
		CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON slow DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()`))
	require.NoError(t, e.c.Sync(e.ctx))
	syd := e.node("syd-1", "syd", e.c.Primary.DSN(), nil, nil)
	lax := e.node("lax-1", "lax", e.c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	e.ready(lax)
	db := e.openDB(lax, 4)
	cases := []struct {
		name  string
		write func(ctx context.Context) error
	}{
		{"autocommit", func(ctx context.Context) error {
			_, err := db.ExecContext(ctx, "INSERT INTO slow VALUES ('a')")
			return err
		}},
		{"transaction", func(ctx context.Context) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO slow VALUES ('t')"); err != nil {
				return errors.Join(errors.New("before commit"), err)
			}
			return tx.Commit()
		}},
		{"pipelined transaction", func(ctx context.Context) error {
			tx, err := db.BeginTx(flypg.Pipeline(ctx), nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO slow VALUES ('p')"); err != nil {
				return err
			}
			return tx.Commit()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, e.c.Primary.Start(e.ctx))
			e.ready(lax)
			done := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
				defer cancel()
				done <- tc.write(ctx)
			}()
			// The COMMIT is sleeping in the trigger: crash now.
			deadline := time.Now().Add(10 * time.Second)
			for {
				s, err := e.c.Primary.QueryString(e.ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
				if err == nil && s != "0" {
					break
				}
				require.True(t, time.Now().Before(deadline), "the commit reaches the trigger")
				time.Sleep(10 * time.Millisecond)
			}
			q, _ := e.c.Primary.QueryString(e.ctx, "SELECT query FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
			crashed := time.Now()
			require.NoError(t, e.c.Primary.Crash())
			err := <-done
			t.Logf("crashed during %q; the write returned %v later: %v", q, time.Since(crashed).Round(time.Millisecond), err)
			require.Error(t, err)
			assert.Equal(t, checker.Unknown, checker.Classify(err), "a COMMIT cut off mid-way has an unknown outcome: %v", err)
		})
	}
}

// A write forwarded to the old primary, committed there, never replicated,
// and answered after the local replica was promoted returns nil: the
// await is skipped because the local database is now writable. The write
// is not on the new primary; DESIGN's nil means "committed and replayed
// locally". The WAL stream to lax is cut so the commit cannot reach it,
// and the link is slow (4 s round trip) so the promotion happens while the
// answer is on its way.
func TestBugAckAfterPromotionLosesWrite(t *testing.T) {
	e := newEnv(t, pgcluster.Options{})
	require.NoError(t, e.c.Primary.Exec(e.ctx, "CREATE TABLE acked (v text)"))
	require.NoError(t, e.c.Sync(e.ctx))
	replWAN, linkWAN := wan.New(0), wan.New(0)
	t.Cleanup(func() { _ = replWAN.Close(); _ = linkWAN.Close() })
	repl, err := replWAN.Proxy(e.ctx, "replication", net.JoinHostPort("127.0.0.1", strconv.Itoa(e.c.Primary.Port())))
	require.NoError(t, err)
	require.NoError(t, e.c.Replicas[0].ReplicateFrom(e.ctx, repl))
	sydRPC := freeAddr(t)
	link, err := linkWAN.Proxy(e.ctx, "link", sydRPC)
	require.NoError(t, err)
	syd := e.node("syd-1", "syd", e.c.Primary.DSN(), nil, func(c *flypg.Config) { c.RPCAddr, c.AdvertiseRPCAddr = sydRPC, link })
	lax := e.node("lax-1", "lax", e.c.Replicas[0].DSN(), []string{syd.GossipAddr()}, func(c *flypg.Config) {
		c.RoleCheckInterval = 100 * time.Millisecond
		c.RPCTimeout = 30 * time.Second
	})
	e.ready(lax)
	db := e.openDB(lax, 4)
	require.NoError(t, db.PingContext(e.ctx))

	replWAN.Partition()
	require.NoError(t, linkWAN.SetRTT(4*time.Second))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
		defer cancel()
		_, err := db.ExecContext(ctx, "INSERT INTO acked VALUES ('x')")
		done <- err
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := e.c.Primary.QueryString(e.ctx, "SELECT count(*) FROM acked")
		if err == nil && s == "1" {
			break // committed on the primary; the answer is on its way back
		}
		require.True(t, time.Now().Before(deadline), "the write reaches the primary")
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, e.c.Primary.Crash())
	require.NoError(t, e.c.Replicas[0].Promote(e.ctx))
	for lax.Stats().Databases[0].Role != "primary" {
		require.True(t, time.Now().Before(deadline), "lax sees its promotion")
		time.Sleep(10 * time.Millisecond)
	}
	err = <-done
	var n string
	n, qerr := e.c.Replicas[0].QueryString(e.ctx, "SELECT count(*) FROM acked")
	require.NoError(t, qerr)
	require.Equal(t, "0", n, "the write is not on the new primary")
	assert.Error(t, err, "so it must not be acknowledged with nil (an *AwaitError would tell the truth)")
}
