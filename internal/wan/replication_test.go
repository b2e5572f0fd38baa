package wan_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/internal/wan"
)

// replayLag inserts a row on the primary and returns how long the replica
// took to replay it, measured from before the insert: the WAL cannot leave
// the primary earlier, so through the WAN the lag is at least RTT/2.
func replayLag(ctx context.Context, t *testing.T, c *pgcluster.Cluster) time.Duration {
	t.Helper()
	start := time.Now()
	require.NoError(t, c.Primary.Exec(ctx, "INSERT INTO t DEFAULT VALUES"))
	pos, err := c.Primary.QueryString(ctx, "SELECT pg_current_wal_insert_lsn()::text")
	require.NoError(t, err)
	require.NoError(t, c.Replicas[0].WaitReplayed(ctx, pos))
	return time.Since(start)
}

func lags(ctx context.Context, t *testing.T, c *pgcluster.Cluster, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = replayLag(ctx, t, c)
	}
	slices.Sort(out)
	return out
}

func TestReplicationThroughWAN(t *testing.T) {
	ctx := testCtx(t)
	const rtt = 200 * time.Millisecond
	w := wan.New(rtt)
	// Registered before the cluster, so it runs after the cluster has
	// stopped: the servers close their connections through the proxy first.
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	c := pgcluster.ForTest(t, pgcluster.Options{})
	require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE t (id bigserial primary key)"))
	require.NoError(t, c.Sync(ctx))

	direct := lags(ctx, t, c, 3)

	addr, err := w.Proxy(ctx, "primary", fmt.Sprintf("127.0.0.1:%d", c.Primary.Port()))
	require.NoError(t, err)
	require.NoError(t, c.Replicas[0].ReplicateFrom(ctx, addr), "replica streaming through the WAN proxy")

	viaWAN := lags(ctx, t, c, 3)
	t.Logf("replay lag: direct %v, through a %v RTT WAN %v", direct, rtt, viaWAN)
	assert.GreaterOrEqual(t, viaWAN[0], rtt/2, "the WAL crosses the WAN once")
	assert.Less(t, viaWAN[0], rtt/2+500*time.Millisecond, "fastest replay through the WAN")
	assert.Less(t, direct[0], rtt/2, "without the WAN the replica keeps up quickly")
}
