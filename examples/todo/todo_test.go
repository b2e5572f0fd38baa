package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/internal/wan"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// secret is the cluster secret of one test run: 32 random bytes in
// base64, as `openssl rand -base64 32` (or `flypg-lab secret`) makes one.
// flypg refuses short or guessable ones.
var secret = func() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(b))
}()

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

// amsDelay is how far behind the primary ams's replica replays
// (recovery_min_apply_delay): long enough that a read there right after a
// write in lax is stale, unless it carries the write's token.
const amsDelay = time.Second

func TestRegions(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections) // runs last: no idle keep-alive goroutines
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// lax's replica streams from the primary across a simulated 100 ms RTT
	// WAN, so read-your-writes is tested against real replication lag;
	// ams's replica replays amsDelay late.
	const rtt = 100 * time.Millisecond
	w := wan.New(rtt)
	t.Cleanup(func() { require.NoError(t, w.Close()) }) // after the cluster has stopped
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: 2})
	replicateThrough(ctx, t, c, w)
	require.NoError(t, c.Replicas[1].Exec(ctx, fmt.Sprintf("ALTER SYSTEM SET recovery_min_apply_delay = '%dms'", amsDelay.Milliseconds())))
	require.NoError(t, c.Replicas[1].Exec(ctx, "SELECT pg_reload_conf()"))

	syd := startRegion(ctx, t, "syd", c.Primary.DSN(), nil)
	var count int
	require.NoError(t, syd.db.QueryRowContext(ctx, "SELECT count(*) FROM todos").Scan(&count), "syd created the table")
	// The replica-region nodes must find the table already there; they
	// never create it (setup is a no-op there).
	require.NoError(t, c.Sync(ctx))
	lax := startRegion(ctx, t, "lax", c.Replicas[0].DSN(), []string{syd.node.GossipAddr()})
	ams := startRegion(ctx, t, "ams", c.Replicas[1].DSN(), []string{syd.node.GossipAddr()})
	require.NoError(t, lax.node.WaitReady(ctx), "lax finds syd")
	require.NoError(t, ams.node.WaitReady(ctx), "ams finds syd")

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

	t.Run("token carries the write to another region", func(t *testing.T) {
		// An API client: the token comes back in the Flypg-Token header.
		resp, created := post(ctx, t, http.DefaultClient, lax.url+"/todos", map[string]string{"title": "moving"}, nil)
		tok := resp.Header.Get("Flypg-Token")
		require.NotEmpty(t, tok, "a write's response carries a token")
		path := ams.url + "/todos/" + strconv.FormatInt(created.ID, 10)

		// Its next request lands in ams, whose replica replays a second
		// late: without the token it misses its own write...
		var e map[string]string
		assert.Equal(t, http.StatusNotFound, call(ctx, t, "GET", path, nil, &e), "ams without the token: stale")
		// ...with it, ams waits until it has replayed the write.
		var got Todo
		require.Equal(t, http.StatusOK, callWith(ctx, t, http.DefaultClient, "GET", path, http.Header{"Flypg-Token": {tok}}, &got),
			"ams with the token sees the write")
		assert.Equal(t, "moving", got.Title)

		// A browser: the cookie set by lax goes to ams too (cookies ignore
		// ports; on Fly.io both regions serve one hostname).
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		browser := &http.Client{Jar: jar}
		t.Cleanup(browser.CloseIdleConnections)
		_, created = post(ctx, t, browser, lax.url+"/todos", map[string]string{"title": "by cookie"}, nil)
		require.Equal(t, http.StatusOK, callWith(ctx, t, browser, "GET", ams.url+"/todos/"+strconv.FormatInt(created.ID, 10), nil, &got),
			"ams with the cookie sees the write")
		assert.Equal(t, "by cookie", got.Title)

		// A forged token is ignored, never waited for: the read is served
		// at once, and stale.
		_, created = post(ctx, t, http.DefaultClient, lax.url+"/todos", map[string]string{"title": "forged"}, nil)
		forged := []byte(tok)
		forged[len(forged)/2] ^= 1
		assert.Equal(t, http.StatusNotFound, callWith(ctx, t, http.DefaultClient, "GET", ams.url+"/todos/"+strconv.FormatInt(created.ID, 10),
			http.Header{"Flypg-Token": {string(forged)}}, &e), "a forged token is ignored")
	})

	t.Run("metrics", func(t *testing.T) {
		before := lax.node.Stats()
		require.Positive(t, before.Forwarded, "the subtests before forwarded writes")
		fams := scrape(ctx, t, lax.url+"/metrics")
		after := lax.node.Stats()

		fwd := fams["flypg_forwarded_statements_total"]
		require.NotNil(t, fwd, "flypg's collector is registered")
		require.Len(t, fwd.GetMetric(), 1)
		m := fwd.GetMetric()[0]
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		assert.Equal(t, "lax", labels["region"])
		assert.Equal(t, lax.node.Name(), labels["node"])
		v := int64(m.GetCounter().GetValue())
		assert.GreaterOrEqual(t, v, before.Forwarded)
		assert.LessOrEqual(t, v, after.Forwarded)
		assert.NotNil(t, fams["go_goroutines"], "the Go collector is registered")
		assert.NotNil(t, fams["flypg_awaits_total"])
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

// post creates a todo with client and returns the response (its body
// read) and the todo.
func post(ctx context.Context, t *testing.T, client *http.Client, url string, body any, h http.Header) (*http.Response, Todo) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(b))
	require.NoError(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "POST %s: %s", url, data)
	var td Todo
	require.NoError(t, json.Unmarshal(data, &td))
	return resp, td
}

// callWith is call with a client and request headers.
func callWith(ctx context.Context, t *testing.T, client *http.Client, method, url string, h http.Header, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	require.NoError(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(data, out), "%s %s: %s", method, url, data)
	}
	return resp.StatusCode
}

// scrape reads a Prometheus text exposition.
func scrape(ctx context.Context, t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
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
	assert.Equal(t, Health{Region: "local", Role: "dev", Ready: true, Node: h.Node}, h)

	var td Todo
	require.Equal(t, http.StatusCreated, call(ctx, t, "POST", srv.URL+"/todos?noawait=1", map[string]string{"title": "local"}, &td))
	require.Equal(t, http.StatusOK, call(ctx, t, "GET", srv.URL+"/todos/"+strconv.FormatInt(td.ID, 10), nil, &td))
	assert.Equal(t, "local", td.Title)

	var batch []Todo
	require.Equal(t, http.StatusCreated, call(ctx, t, "POST", srv.URL+"/todos/batch", map[string]any{"titles": []string{"a", "b"}}, &batch))
	require.Len(t, batch, 2)
	assert.Equal(t, "b", batch[1].Title)
}

// TestConfig checks the app's environment-only configuration: DATABASE_URL
// is the primary's URL in every region, and FLYPG_DSN, where set, names the
// local database as is.
func TestConfig(t *testing.T) {
	t.Setenv("FLY_REGION", "lax")
	t.Setenv("PRIMARY_REGION", "syd")
	t.Setenv("DATABASE_URL", "postgres://u@db.internal:5432/app")
	t.Setenv("FLYPG_DSN", "")
	t.Setenv("FLYPG_SECRET", string(secret))
	cfg, err := config()
	require.NoError(t, err)
	assert.Equal(t, "lax", cfg.Region)
	assert.Equal(t, "syd", cfg.PrimaryRegion)
	assert.Equal(t, "postgres://u@db.internal:5432/app", cfg.DatabaseURL, "the primary's URL, unchanged")
	assert.Empty(t, cfg.DSN, "flypg derives lax's replica itself")
	want, err := flypg.ReplicaURL(cfg.DatabaseURL, "lax", "syd")
	require.NoError(t, err)
	assert.Equal(t, "postgres://u@top1.nearest.of.db.internal:5433/app", want, "what flypg will use")
	assert.Equal(t, secret, cfg.Secret)

	t.Setenv("FLYPG_DSN", "postgres://u@127.0.0.1:6000/app")
	cfg, err = config()
	require.NoError(t, err)
	assert.Equal(t, "postgres://u@127.0.0.1:6000/app", cfg.DSN)

	t.Setenv("FLYPG_AWAIT_TIMEOUT", "soon")
	_, err = config()
	require.ErrorContains(t, err, "FLYPG_AWAIT_TIMEOUT")
}
