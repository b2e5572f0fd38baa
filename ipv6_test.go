package flypg_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
)

// Fly.io's private network is IPv6 only: a cluster whose gossip and write
// link are on [::1] forwards and awaits as on IPv4.
func TestClusterOnIPv6(t *testing.T) {
	c := cluster(t)
	v6 := func(cfg *flypg.Config) { cfg.GossipAddr, cfg.RPCAddr = "[::1]:0", "[::1]:0" }
	syd := startNode(t, "syd", c.Primary.DSN(), nil, v6)
	require.True(t, strings.HasPrefix(syd.GossipAddr(), "[::1]:"), syd.GossipAddr())
	host, _, err := net.SplitHostPort(syd.RPCAddr())
	require.NoError(t, err)
	assert.Equal(t, "::1", host, "the link is advertised on IPv6")
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, v6)
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	db := lax.OpenDB()
	defer db.Close()
	_, err = db.ExecContext(ctx, "DROP TABLE IF EXISTS v6; CREATE TABLE v6 (id int)")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO v6 VALUES (6)")
	require.NoError(t, err)
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM v6").Scan(&n))
	assert.Equal(t, 1, n)
	assert.NotZero(t, lax.Stats().Forwarded)
}

// Old and new link protocol versions side by side, as during a rolling
// upgrade: a node that speaks only version 2 and one that speaks 2–3
// negotiate 2, and forwarding works between them both ways.
func TestMixedLinkProtocolVersions(t *testing.T) {
	c := cluster(t)
	old := func(cfg *flypg.Config) { cfg.MaxProtocolVersion = 2 }
	syd := startNode(t, "syd", c.Primary.DSN(), nil, old)
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	db := lax.OpenDB()
	defer db.Close()
	_, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS mixv; CREATE TABLE mixv (id int)")
	require.NoError(t, err)
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO mixv VALUES (1)")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM mixv").Scan(&n))
	assert.Equal(t, 1, n)

	// Both ends negotiated the old version: the cap reached the link.
	linkVersion := func(from *flypg.Node, to string) int {
		for _, m := range from.Stats().Members {
			if m.Name == to {
				return m.LinkVersion
			}
		}
		return -1
	}
	assert.Equal(t, 2, linkVersion(lax, syd.Name()), "lax links to the capped node at version 2")
	assert.Equal(t, 2, linkVersion(syd, lax.Name()), "the capped node links to lax at version 2")
	// A third, uncapped node links to lax at the newest version.
	ams := startNode(t, "ams", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	require.NoError(t, ams.WaitReady(ctx))
	require.Eventually(t, func() bool { return linkVersion(ams, lax.Name()) > 0 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 3, linkVersion(ams, lax.Name()))
}
