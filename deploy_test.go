package flypg_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's deployment, in a fresh process: every region gets the same
// DATABASE_URL (the primary's), and sql.Open("flypg", DATABASE_URL) in a
// replica region must read from the region's replica — never make the
// primary its local database — and forward and await its writes.
func TestSQLOpenWithThePrimaryURLInAReplicaRegion(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS child_rows; CREATE TABLE child_rows (id bigserial PRIMARY KEY, v text)")
	res := child(t, "open-and-use", map[string]string{
		"FLY_REGION":           "lax",
		"PRIMARY_REGION":       "syd",
		"DATABASE_URL":         r.c.Primary.DSN(),
		"FLYPG_DSN":            r.c.Replicas[0].DSN(), // loopback servers have no top1.nearest.of. name
		"FLYPG_SECRET":         string(secret),
		"FLYPG_JOIN":           r.syd.GossipAddr(),
		"FLYPG_GOSSIP_ADDR":    "127.0.0.1:0",
		"FLYPG_RPC_ADDR":       "127.0.0.1:0",
		"FLYPG_GOSSIP_PROFILE": "local",
	})
	require.Empty(t, res.OpenErr)
	require.Empty(t, res.Err)
	assert.True(t, res.InRecovery, "reads run on the region's replica, not on the primary the URL names")
	assert.True(t, res.SawWrite, "the write was forwarded, and the read right after it saw it")
	var n int
	require.NoError(t, r.primary.QueryRow("SELECT count(*) FROM child_rows").Scan(&n))
	assert.Equal(t, 1, n)
}

// Like pgx, sql.Open does no I/O: with the database down and no node
// started, it neither fails nor binds the cluster's ports; the first use
// reports the problem, without the password.
func TestSQLOpenDoesNoIO(t *testing.T) {
	rpc := freeAddr(t)
	down := fmt.Sprintf("postgres://app:%s@%s/app?connect_timeout=2", url.QueryEscape("hunter2-s3cret"), freeAddr(t))
	for _, region := range []string{"syd", ""} {
		t.Run("primary region "+region, func(t *testing.T) {
			res := child(t, "open-no-io", map[string]string{
				"FLY_REGION":        "syd",
				"PRIMARY_REGION":    region,
				"DATABASE_URL":      down,
				"FLYPG_SECRET":      string(secret),
				"FLYPG_RPC_ADDR":    rpc,
				"FLYPG_GOSSIP_ADDR": "127.0.0.1:0",
			})
			assert.Empty(t, res.OpenErr, "sql.Open does not fail because the server is down")
			assert.True(t, res.PortFree, "sql.Open binds nothing")
			require.NotEmpty(t, res.Err, "the first use reports the server being down")
			assert.NotContains(t, res.Err, "hunter2-s3cret")
		})
	}
}

// In a replica region a primary URL whose host is an address cannot be
// turned into the replica's: the first use says so — it never silently
// runs on the primary.
func TestSQLOpenNeverUsesThePrimaryAsTheLocalDatabase(t *testing.T) {
	r := startRegions(t, nil)
	res := child(t, "open-and-use", map[string]string{
		"FLY_REGION":           "lax",
		"PRIMARY_REGION":       "syd",
		"DATABASE_URL":         r.c.Primary.DSN(),
		"FLYPG_SECRET":         string(secret),
		"FLYPG_JOIN":           r.syd.GossipAddr(),
		"FLYPG_GOSSIP_ADDR":    "127.0.0.1:0",
		"FLYPG_RPC_ADDR":       "127.0.0.1:0",
		"FLYPG_GOSSIP_PROFILE": "local",
	})
	assert.False(t, res.InRecovery)
	require.NotEmpty(t, res.OpenErr+res.Err)
	assert.True(t, strings.Contains(res.OpenErr+res.Err, "FLYPG_DSN"), "the error says what to set: %s", res.OpenErr+res.Err)
}
