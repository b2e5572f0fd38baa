package flypghttp_test

// Regression tests of root-package bugs found while building flypghttp
// (fixed in the root): tokens for INSERT … RETURNING in the primary region,
// and foreign tokens before a node's first connection.

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/flypghttp"
	"github.com/flypg/flypg/internal/pgcluster"
)

// TestRegressionPrimaryRegionQueryWriteTracked: in the primary region, under
// Track, an autocommit write run with QueryContext (INSERT … RETURNING —
// the usual way to learn a new row's id) must record its LSN as ExecContext
// does. Today trackLocal runs its WAL-position query on the same pgx
// connection while the write's rows are still open: the LSN is lost, or
// pgx's stdlib Rows.Next panics (index out of range) when the rows are read.
func TestRegressionPrimaryRegionQueryWriteTracked(t *testing.T) {
	r := startRegions(t, nil)
	db := r.syd.OpenDB()
	defer db.Close()

	ctx, tr := flypg.Track(testCtx(t))
	_, err := db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('exec')")
	require.NoError(t, err)
	require.NotZero(t, tr.LSN(), "ExecContext is tracked")

	ctx, tr = flypg.Track(testCtx(t))
	var id int64
	require.NotPanics(t, func() {
		err = db.QueryRowContext(ctx, "INSERT INTO notes (body) VALUES ('query') RETURNING id").Scan(&id)
	})
	require.NoError(t, err)
	assert.NotZero(t, tr.LSN(), "QueryContext of a write is tracked")
}

// TestRegressionPrimaryRegionTokenForReturning: the same bug, as a user of
// flypghttp meets it: a POST served in the primary region whose handler
// inserts with RETURNING gets no token.
func TestRegressionPrimaryRegionTokenForReturning(t *testing.T) {
	r := startRegions(t, nil)
	_, resp := write(t, http.DefaultClient, serve(t, r.syd), nil)
	assert.NotEmpty(t, tokenOf(t, resp))
}

// TestRegressionForeignDatabaseTokenBeforeFirstConnection: a node that has
// not connected to its database yet (system identifier unknown) must still
// refuse a token made for another database cluster with the same secret and
// app. Today ParseToken skips the check while its own identifier is 0, so
// the first requests after a start honour such a token — and, its LSN being
// of another WAL stream, may wait AwaitTimeout per statement for it.
func TestRegressionForeignDatabaseTokenBeforeFirstConnection(t *testing.T) {
	c := flypghttp.TestCluster(t)
	other := pgcluster.ForTest(t, pgcluster.Options{Replicas: -1})
	maker := startNode(t, "syd", other.Primary.DSN(), nil, func(cfg *flypg.Config) { cfg.NodeName = "maker" })
	db := maker.OpenDB()
	defer db.Close()
	require.NoError(t, db.PingContext(testCtx(t)), "maker learns its database's identity")
	tok := maker.Token(1 << 40)

	fresh := startNode(t, "syd", c.Primary.DSN(), nil, func(cfg *flypg.Config) { cfg.NodeName = "fresh" })
	_, err := fresh.ParseToken(tok)
	assert.ErrorIs(t, err, flypg.ErrInvalidToken, "a token of another database cluster, before the first connection")
}
