package pgcluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/pgcluster"
)

// TestAddReplica: a running cluster grows a hot standby that has the data
// written before, streams what comes after, and can be paused and promoted
// like the first ones.
func TestAddReplica(t *testing.T) {
	forEachMethod(t, pgcluster.Options{}, func(t *testing.T, c *pgcluster.Cluster) {
		ctx := ctxFor(t)
		require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)"))

		lax, err := c.AddReplica(ctx, "lax")
		require.NoError(t, err)
		assert.Equal(t, "lax", lax.Name)
		require.Len(t, c.Replicas, 2)
		assert.Same(t, lax, c.Replicas[1])
		assert.Equal(t, "true", query(t, lax, "SELECT pg_is_in_recovery()::text"))
		assert.Equal(t, "1", query(t, lax, "SELECT count(*)::text FROM t"), "data written before the replica existed")
		assert.Equal(t, "streaming", query(t, c.Primary, "SELECT state FROM pg_stat_replication WHERE application_name = 'lax'"))

		target := insertLSN(t, c.Primary, "t", 2)
		require.NoError(t, lax.WaitReplayed(ctx, target))
		assert.Equal(t, "2", query(t, lax, "SELECT count(*)::text FROM t"), "data written after")

		next, err := c.AddReplica(ctx, "")
		require.NoError(t, err)
		assert.Equal(t, "replica2", next.Name, "an unnamed replica gets the next free replicaN")
		require.NoError(t, c.Sync(ctx))

		require.NoError(t, lax.PauseReplay(ctx))
		require.NoError(t, lax.Promote(ctx))
		require.NoError(t, lax.Exec(ctx, "INSERT INTO t VALUES (3)"), "promoted added replica accepts writes")
	})
}

// TestAddReplicaUnderLoad: a replica added while the primary is busy
// writing (pages changing under the copy) ends up with exactly the
// primary's data.
func TestAddReplicaUnderLoad(t *testing.T) {
	forEachMethod(t, pgcluster.Options{Replicas: -1}, func(t *testing.T, c *pgcluster.Cluster) {
		ctx := ctxFor(t)
		require.NoError(t, c.Primary.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, v text);
			INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 5000) i`))

		conn, err := pgx.Connect(ctx, c.Primary.DSN())
		require.NoError(t, err)
		defer conn.Close(context.Background())
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				_, err := conn.Exec(ctx, "UPDATE t SET v = md5(v) WHERE id % 50 = $1", i%50)
				if err == nil {
					_, err = conn.Exec(ctx, "INSERT INTO t SELECT 5000 + $1::int * 100 + i, 'x' FROM generate_series(1, 100) i", i)
				}
				if err != nil {
					done <- err
					return
				}
			}
		}()
		t0 := time.Now()
		r, err := c.AddReplica(ctx, "busy")
		t.Logf("AddReplica under load took %v", time.Since(t0))
		close(stop)
		require.NoError(t, <-done, "writer")
		require.NoError(t, err)

		t0 = time.Now()
		require.NoError(t, c.Sync(ctx))
		t.Logf("Sync took %v", time.Since(t0))
		const digest = "SELECT count(*) || ' ' || md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM t"
		want := query(t, c.Primary, digest)
		assert.Equal(t, want, query(t, r, digest))
		assert.NotEqual(t, "5000", strings.Fields(want)[0], "the writer wrote during the copy")
	})
}

// TestAddReplicaBadNames: names that are taken or unusable are refused and
// leave nothing behind.
func TestAddReplicaBadNames(t *testing.T) {
	ctx := ctxFor(t)
	c := pgcluster.ForTest(t, pgcluster.Options{})
	for _, name := range []string{"replica1", "primary", "Lax", "a/b", "../x", "1st", "a b"} {
		t.Run(name, func(t *testing.T) {
			_, err := c.AddReplica(ctx, name)
			require.Error(t, err)
			assert.Contains(t, err.Error(), fmt.Sprintf("%q", name))
		})
	}
	assert.Len(t, c.Replicas, 1)
	entries, err := os.ReadDir(c.Dir())
	require.NoError(t, err)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".s.PGSQL.") {
			continue // the servers' sockets
		}
		assert.Contains(t, []string{"primary", "primary.log", "replica1", "replica1.log", "owner.pid"}, e.Name(), "left behind")
	}
	_, err = c.AddReplicaFrom(ctx, "x", nil)
	assert.Error(t, err, "nil upstream")
}

// TestFailover is the failover a fault test runs: the primary stops, a
// replica is promoted, the other replica follows it onto the new timeline,
// and a new replica of the promoted server restores redundancy.
func TestFailover(t *testing.T) {
	forEachMethod(t, pgcluster.Options{Replicas: 2}, func(t *testing.T, c *pgcluster.Cluster) {
		ctx := ctxFor(t)
		require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)"))
		require.NoError(t, c.Sync(ctx))
		follower, promoted := c.Replicas[0], c.Replicas[1]

		// A clean stop sends the last WAL to both replicas, so neither is
		// ahead of the other and the follower can switch timelines.
		require.NoError(t, c.Primary.Stop())
		require.NoError(t, promoted.Promote(ctx))
		require.NoError(t, follower.ReplicateFrom(ctx, promoted.Addr()))

		target := insertLSN(t, promoted, "t", 2)
		require.NoError(t, follower.WaitReplayed(ctx, target))
		assert.Equal(t, "2", query(t, follower, "SELECT count(*)::text FROM t"))
		assert.Equal(t, "2", query(t, follower, "SELECT received_tli::text FROM pg_stat_wal_receiver"), "follows timeline 2")

		fresh, err := c.AddReplicaFrom(ctx, "fresh", promoted)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(promoted.Port()), query(t, fresh, "SELECT sender_port::text FROM pg_stat_wal_receiver"))
		target = insertLSN(t, promoted, "t", 3)
		require.NoError(t, fresh.WaitReplayed(ctx, target))
		assert.Equal(t, "3", query(t, fresh, "SELECT count(*)::text FROM t"))
	})
}

// TestStandbyServesReplication: a standby accepts physical replication
// connections — a client's (IDENTIFY_SYSTEM answers with the cluster's
// system identifier) and a cascaded standby's, which then replays the
// primary's writes through it.
func TestStandbyServesReplication(t *testing.T) {
	forEachMethod(t, pgcluster.Options{Replicas: 2}, func(t *testing.T, c *pgcluster.Cluster) {
		ctx := ctxFor(t)
		mid, leaf := c.Replicas[0], c.Replicas[1]

		conn, err := pgconn.Connect(ctx, mid.DSN()+"&replication=true")
		require.NoError(t, err)
		res, err := conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
		require.NoError(t, conn.Close(ctx))
		require.NoError(t, err)
		require.Len(t, res, 1)
		require.Len(t, res[0].Rows, 1)
		assert.Equal(t, query(t, c.Primary, "SELECT system_identifier::text FROM pg_control_system()"), string(res[0].Rows[0][0]))

		require.NoError(t, leaf.ReplicateFrom(ctx, mid.Addr()))
		assert.Equal(t, "replica2", query(t, mid, "SELECT string_agg(application_name, ',') FROM pg_stat_replication"))
		require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE t (id int)"))
		target := insertLSN(t, c.Primary, "t", 1)
		require.NoError(t, leaf.WaitReplayed(ctx, target))
		assert.Equal(t, "1", query(t, leaf, "SELECT count(*)::text FROM t"))
	})
}

// TestAddReplicaFromStandby: a standby can be cloned when the primary
// writes full pages; otherwise the clone is refused (it could be torn).
func TestAddReplicaFromStandby(t *testing.T) {
	forEachMethod(t, pgcluster.Options{Fsync: true}, func(t *testing.T, c *pgcluster.Cluster) {
		ctx := ctxFor(t)
		mid := c.Replicas[0]
		require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)"))
		require.NoError(t, c.Sync(ctx))
		leaf, err := c.AddReplicaFrom(ctx, "leaf", mid)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(mid.Port()), query(t, leaf, "SELECT sender_port::text FROM pg_stat_wal_receiver"), "streams from the standby")
		target := insertLSN(t, c.Primary, "t", 2)
		require.NoError(t, leaf.WaitReplayed(ctx, target))
		assert.Equal(t, "2", query(t, leaf, "SELECT count(*)::text FROM t"))
	})

	c := pgcluster.ForTest(t, pgcluster.Options{})
	_, err := c.AddReplicaFrom(ctxFor(t), "leaf", c.Replicas[0])
	require.Error(t, err)
	assert.Contains(t, err.Error(), "full_page_writes")
	assert.NoDirExists(t, filepath.Join(c.Dir(), "leaf"))
}

// BenchmarkAddReplica measures adding a streaming standby to a running
// cluster, per standby method (pg_basebackup is the baseline).
func BenchmarkAddReplica(b *testing.B) {
	for _, m := range methods(b) {
		b.Run(m.name, func(b *testing.B) {
			c := pgcluster.ForTest(b, pgcluster.Options{BinDir: m.bin, Replicas: -1})
			ctx := ctxFor(b)
			i := 0
			for b.Loop() {
				i++
				r, err := c.AddReplica(ctx, fmt.Sprintf("r%d", i))
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = r.Stop()
				b.StartTimer()
			}
		})
	}
}
