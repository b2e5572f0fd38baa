package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/internal/wan"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("todo-example-test-secret")

// region is the app running in one region, as main would run it, but on an
// httptest server.
type region struct {
	node *flypg.Node
	db   *sql.DB
	url  string
}

func startRegion(ctx context.Context, t *testing.T, name, dsn string, join []string) *region {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	node, err := flypg.Start(ctx, flypg.Config{
		Region:        name,
		PrimaryRegion: "syd",
		DSN:           dsn,
		GossipAddr:    "127.0.0.1:0",
		RPCAddr:       "127.0.0.1:0",
		Join:          join,
		Secret:        secret,
		GossipProfile: "local",
		Logger:        log,
	})
	require.NoError(t, err, "start %s", name)
	db := node.OpenDB()
	require.NoError(t, setup(ctx, db, node, log))
	srv := httptest.NewServer(newServer(db, node, log))
	// Cleanups run in reverse: HTTP first, then the database, then the node,
	// as main shuts down.
	t.Cleanup(func() { closeNode(t, node) })
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	t.Cleanup(srv.Close)
	return &region{node: node, db: db, url: srv.URL}
}

// closeNode closes a node; an error is logged, not failed on: on a loaded
// machine the transport's leave broadcast (500 ms in the "local" gossip
// profile) can time out, which is flypg's concern and not this app's.
func closeNode(t *testing.T, node *flypg.Node) {
	if err := node.Close(); err != nil {
		t.Logf("node.Close: %v", err)
	}
}

// call sends a request and decodes the JSON answer into out (if not nil).
func call(ctx context.Context, t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(data, out), "%s %s: %s", method, url, data)
	}
	return resp.StatusCode
}

func TestTwoRegions(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections) // runs last: no idle keep-alive goroutines
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// lax's replica streams from the primary across a simulated 100 ms RTT
	// WAN, so read-your-writes is tested against real replication lag.
	const rtt = 100 * time.Millisecond
	w := wan.New(rtt)
	t.Cleanup(func() { require.NoError(t, w.Close()) }) // after the cluster has stopped
	c := pgcluster.ForTest(t, pgcluster.Options{})
	replicateThrough(ctx, t, c, w)

	syd := startRegion(ctx, t, "syd", c.Primary.DSN(), nil)
	var count int
	require.NoError(t, syd.db.QueryRowContext(ctx, "SELECT count(*) FROM todos").Scan(&count), "syd created the table")
	// The replica-region node must find the table already there; it never
	// creates it (setup is a no-op there).
	require.NoError(t, c.Sync(ctx))
	lax := startRegion(ctx, t, "lax", c.Replicas[0].DSN(), []string{syd.node.GossipAddr()})
	require.NoError(t, lax.node.WaitReady(ctx), "lax finds syd")

	t.Run("healthz", func(t *testing.T) {
		for _, tc := range []struct {
			r    *region
			name string
			role string
		}{{syd, "syd", "primary"}, {lax, "lax", "replica"}} {
			var h Health
			require.Equal(t, http.StatusOK, call(ctx, t, "GET", tc.r.url+"/healthz", nil, &h))
			assert.Equal(t, tc.name, h.Region)
			assert.Equal(t, "syd", h.PrimaryRegion)
			assert.Equal(t, tc.role, h.Role)
			assert.True(t, h.Ready)
			assert.NotEmpty(t, h.Node)
			assert.Equal(t, tc.r.node.GossipAddr(), h.GossipAddr)
			assert.Equal(t, tc.r.node.RPCAddr(), h.RPCAddr)
		}
	})

	var created Todo
	t.Run("read your writes in lax", func(t *testing.T) {
		start := time.Now()
		require.Equal(t, http.StatusCreated, call(ctx, t, "POST", lax.url+"/todos", map[string]string{"title": "buy milk"}, &created))
		took := time.Since(start)
		t.Logf("POST in lax took %v (replication crosses a %v RTT WAN)", took, rtt)
		assert.GreaterOrEqual(t, took, rtt/2, "the answer waited for the WAL to cross the WAN")
		assert.Positive(t, created.ID)
		assert.Equal(t, "buy milk", created.Title)
		assert.False(t, created.Done)
		assert.WithinDuration(t, time.Now(), created.CreatedAt, time.Minute)

		// Immediately, from the replica: flypg waited for replay before the
		// POST answered.
		var got Todo
		require.Equal(t, http.StatusOK, call(ctx, t, "GET", lax.url+"/todos/"+strconv.FormatInt(created.ID, 10), nil, &got))
		assert.Equal(t, created.ID, got.ID)
		assert.Equal(t, created.Title, got.Title)
		assert.True(t, created.CreatedAt.Equal(got.CreatedAt))

		var done Todo
		require.Equal(t, http.StatusOK, call(ctx, t, "POST", lax.url+"/todos/"+strconv.FormatInt(created.ID, 10)+"/complete", nil, &done))
		assert.True(t, done.Done)
		require.Equal(t, http.StatusOK, call(ctx, t, "GET", lax.url+"/todos/"+strconv.FormatInt(created.ID, 10), nil, &got))
		assert.True(t, got.Done, "completion visible in lax at once")
	})

	t.Run("lax writes visible in syd", func(t *testing.T) {
		var fromSyd Todo
		require.Equal(t, http.StatusCreated, call(ctx, t, "POST", syd.url+"/todos", map[string]string{"title": "from syd"}, &fromSyd))
		var list []Todo
		require.Equal(t, http.StatusOK, call(ctx, t, "GET", syd.url+"/todos", nil, &list))
		require.Len(t, list, 2)
		assert.Equal(t, created.ID, list[0].ID)
		assert.True(t, list[0].Done, "lax's completion, on the primary")
		assert.Equal(t, "from syd", list[1].Title)
	})

	t.Run("noawait", func(t *testing.T) {
		var quick Todo
		require.Equal(t, http.StatusCreated, call(ctx, t, "POST", lax.url+"/todos?noawait=1", map[string]string{"title": "eventually"}, &quick))
		// No read-your-writes promise now: the row shows up once replayed.
		path := lax.url + "/todos/" + strconv.FormatInt(quick.ID, 10)
		var e map[string]string
		t.Logf("GET right after a noawait POST: %d (404 expected while the WAL crosses the WAN)", call(ctx, t, "GET", path, nil, &e))
		require.Eventually(t, func() bool {
			var got Todo
			return call(ctx, t, "GET", path, nil, &got) == http.StatusOK && got.Title == "eventually"
		}, 10*time.Second, 5*time.Millisecond)
		stats := lax.node.Stats()
		assert.Positive(t, stats.Skipped, "the noawait write skipped the wait")
		assert.Positive(t, stats.Forwarded)
	})

	t.Run("batch in one round trip", func(t *testing.T) {
		titles := []string{"one", "two", "three"}
		var todos []Todo
		require.Equal(t, http.StatusCreated, call(ctx, t, "POST", lax.url+"/todos/batch", map[string]any{"titles": titles}, &todos))
		require.Len(t, todos, len(titles))
		for i, td := range todos {
			assert.Equal(t, titles[i], td.Title)
			// CallPrimary waited for replay: every row is readable in lax now.
			var got Todo
			require.Equal(t, http.StatusOK, call(ctx, t, "GET", lax.url+"/todos/"+strconv.FormatInt(td.ID, 10), nil, &got))
			assert.Equal(t, td.Title, got.Title)
		}
		var e map[string]string
		assert.Equal(t, http.StatusBadRequest, call(ctx, t, "POST", lax.url+"/todos/batch", map[string]any{"titles": []string{}}, &e))
		assert.Equal(t, http.StatusBadRequest, call(ctx, t, "POST", lax.url+"/todos/batch", map[string]any{"titles": []string{"ok", " "}}, &e))

		var st flypg.Stats
		require.Equal(t, http.StatusOK, call(ctx, t, "GET", lax.url+"/stats", nil, &st))
		assert.Positive(t, st.Forwarded)
		assert.Positive(t, st.Awaits)
	})

	t.Run("errors", func(t *testing.T) {
		var e map[string]string
		assert.Equal(t, http.StatusNotFound, call(ctx, t, "GET", lax.url+"/todos/999999", nil, &e))
		assert.Equal(t, "todo not found", e["error"])
		assert.Equal(t, http.StatusNotFound, call(ctx, t, "POST", lax.url+"/todos/999999/complete", nil, &e))
		assert.Equal(t, http.StatusBadRequest, call(ctx, t, "GET", lax.url+"/todos/abc", nil, &e))
		assert.Equal(t, http.StatusBadRequest, call(ctx, t, "POST", lax.url+"/todos", map[string]string{"title": "  "}, &e))
		assert.Equal(t, http.StatusBadRequest, call(ctx, t, "POST", lax.url+"/todos", map[string]any{"title": "x", "extra": 1}, &e))
	})
}

// replicateThrough points the replica's WAL receiver at a proxy of w in
// front of the primary and waits until it streams from there.
func replicateThrough(ctx context.Context, t *testing.T, c *pgcluster.Cluster, w *wan.WAN) {
	t.Helper()
	addr, err := w.Proxy(ctx, "primary", fmt.Sprintf("127.0.0.1:%d", c.Primary.Port()))
	require.NoError(t, err)
	require.NoError(t, c.Replicas[0].ReplicateFrom(ctx, addr), "replica streaming through the WAN")
}

// TestDevMode runs the app with no regions at all: a plain pass-through on
// one database, which creates its own table.
func TestDevMode(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: -1})
	t.Setenv("FLY_REGION", "")
	t.Setenv("PRIMARY_REGION", "")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	node, err := flypg.Start(ctx, flypg.Config{DSN: c.Primary.DSN(), Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { closeNode(t, node) })
	db := node.OpenDB()
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	require.NoError(t, setup(ctx, db, node, log))
	srv := httptest.NewServer(newServer(db, node, log))
	t.Cleanup(srv.Close)

	var h Health
	require.Equal(t, http.StatusOK, call(ctx, t, "GET", srv.URL+"/healthz", nil, &h))
	assert.Equal(t, Health{Region: "local", PrimaryRegion: "local", Role: "dev", Ready: true, Node: h.Node}, h)

	var td Todo
	require.Equal(t, http.StatusCreated, call(ctx, t, "POST", srv.URL+"/todos?noawait=1", map[string]string{"title": "local"}, &td))
	require.Equal(t, http.StatusOK, call(ctx, t, "GET", srv.URL+"/todos/"+strconv.FormatInt(td.ID, 10), nil, &td))
	assert.Equal(t, "local", td.Title)

	var batch []Todo
	require.Equal(t, http.StatusCreated, call(ctx, t, "POST", srv.URL+"/todos/batch", map[string]any{"titles": []string{"a", "b"}}, &batch))
	require.Len(t, batch, 2)
	assert.Equal(t, "b", batch[1].Title)
}

// TestConfig checks that FLYPG_DSN names the local database as is, where
// flypg alone would derive a replica URL from DATABASE_URL.
func TestConfig(t *testing.T) {
	t.Setenv("FLY_REGION", "lax")
	t.Setenv("PRIMARY_REGION", "syd")
	t.Setenv("DATABASE_URL", "postgres://u@db.internal:5432/app")
	t.Setenv("FLYPG_DSN", "")
	cfg, err := config()
	require.NoError(t, err)
	assert.Equal(t, "postgres://u@lax.db.internal:5433/app", cfg.DSN, "flypg's own rewrite")

	t.Setenv("FLYPG_DSN", "postgres://u@127.0.0.1:6000/app")
	cfg, err = config()
	require.NoError(t, err)
	assert.Equal(t, "postgres://u@127.0.0.1:6000/app", cfg.DSN)
}
