package flypghttp_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/flypghttp"
	"github.com/flypg/flypg/internal/pgcluster"
)

var (
	secret      = []byte("+/RgVTwrGEZJpSMv3BVvHiq2EhDkCuhUiVIvJi9Ec4Q=") // openssl rand -base64 32
	otherSecret = []byte("JxDa63pV6DFIL4FFc7w3+PCxdD0wMEddM1jUmhW6fHM=")
)

const appName = "flypghttp-test"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startNode starts a node of the test cluster; mod adjusts its Config.
func startNode(t testing.TB, region, dsn string, join []string, mod func(*flypg.Config)) *flypg.Node {
	t.Helper()
	cfg := flypg.Config{
		Region:        region,
		PrimaryRegion: "syd",
		DSN:           dsn,
		App:           appName,
		NodeName:      fmt.Sprintf("%s-%s", region, t.Name()),
		GossipAddr:    "127.0.0.1:0",
		RPCAddr:       "127.0.0.1:0",
		Join:          join,
		Secret:        secret,
		GossipProfile: "local",
		AwaitTimeout:  10 * time.Second,
		Logger:        quiet(),
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := flypg.Start(testCtx(t), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// regions is a primary-region node "syd" on the primary and replica-region
// nodes "lax" and "ams", each on its own standby, in one cluster.
type regions struct {
	c             *pgcluster.Cluster
	syd, lax, ams *flypg.Node
}

func startRegions(t testing.TB, mods map[string]func(*flypg.Config)) *regions {
	t.Helper()
	c := flypghttp.TestCluster(t)
	notesTable(t, c)
	r := &regions{c: c}
	r.syd = startNode(t, "syd", c.Primary.DSN(), nil, mods["syd"])
	r.lax = startNode(t, "lax", c.Replicas[0].DSN(), []string{r.syd.GossipAddr()}, mods["lax"])
	r.ams = startNode(t, "ams", c.Replicas[1].DSN(), []string{r.syd.GossipAddr()}, mods["ams"])
	ctx := testCtx(t)
	require.NoError(t, r.lax.WaitReady(ctx), "lax finds syd")
	require.NoError(t, r.ams.WaitReady(ctx), "ams finds syd")
	return r
}

var tableOnce sync.Once

func notesTable(t testing.TB, c *pgcluster.Cluster) {
	t.Helper()
	var err error
	tableOnce.Do(func() {
		ctx := testCtx(t)
		if err = c.Primary.Exec(ctx, "CREATE TABLE notes (id bigserial PRIMARY KEY, body text NOT NULL)"); err == nil {
			err = c.Sync(ctx)
		}
	})
	require.NoError(t, err)
}

// notes is the test app: POST /notes writes a note and answers its id (with
// ?exec=1 by ExecContext, answering no id); GET /notes/{id} answers 200 if
// the note is visible, 404 if not.
func notes(db *sql.DB) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /notes", func(w http.ResponseWriter, r *http.Request) {
		var id int64
		var err error
		if r.FormValue("exec") != "" {
			// In the primary region, QueryContext writes are not tracked yet
			// (regression_test.go).
			_, err = db.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ($1)", r.FormValue("body"))
		} else {
			id, err = addNote(r.Context(), db, r.FormValue("body"))
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, id)
	})
	mux.HandleFunc("GET /notes/{id}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		if err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM notes WHERE id = $1", r.PathValue("id")).Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if n == 0 {
			http.Error(w, "missing", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, "found")
	})
	return mux
}

func addNote(ctx context.Context, db *sql.DB, body string) (int64, error) {
	var id int64
	err := db.QueryRowContext(ctx, "INSERT INTO notes (body) VALUES ($1) RETURNING id", body).Scan(&id)
	return id, err
}

// serve runs the notes app on n behind the middleware.
func serve(t testing.TB, n *flypg.Node, opts ...flypghttp.Option) *httptest.Server {
	t.Helper()
	db := n.OpenDB()
	s := httptest.NewServer(flypghttp.Middleware(n, opts...)(notes(db)))
	t.Cleanup(func() {
		s.Close()
		db.Close()
	})
	return s
}

// do sends a request and returns the response with its body read.
func do(t testing.TB, c *http.Client, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, strings.TrimSpace(string(body))
}

// write posts a note through s and returns its id and the response.
func write(t testing.TB, c *http.Client, s *httptest.Server, header http.Header) (string, *http.Response) {
	t.Helper()
	return post(t, c, s.URL+"/notes?body=x", header)
}

// writeExec is write by ExecContext.
func writeExec(t testing.TB, c *http.Client, s *httptest.Server, header http.Header) *http.Response {
	t.Helper()
	_, resp := post(t, c, s.URL+"/notes?body=x&exec=1", header)
	return resp
}

func post(t testing.TB, c *http.Client, url string, header http.Header) (string, *http.Response) {
	t.Helper()
	resp, body := do(t, c, "POST", url, header)
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	return body, resp
}

// visible reports whether note id is visible through s.
func visible(t testing.TB, c *http.Client, s *httptest.Server, id string, header http.Header) (bool, *http.Response) {
	t.Helper()
	resp, body := do(t, c, "GET", s.URL+"/notes/"+id, header)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, resp
	case http.StatusNotFound:
		return false, resp
	}
	t.Fatalf("GET /notes/%s: %s: %s", id, resp.Status, body)
	return false, nil
}

// delayReplay makes a standby apply commits only d after they were made,
// until the test ends.
func delayReplay(t testing.TB, c *pgcluster.Cluster, s *pgcluster.Server, d time.Duration) {
	t.Helper()
	ctx := testCtx(t)
	require.NoError(t, s.Exec(ctx, fmt.Sprintf("ALTER SYSTEM SET recovery_min_apply_delay = '%dms'", d.Milliseconds())))
	require.NoError(t, s.Exec(ctx, "SELECT pg_reload_conf()"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, s.Exec(ctx, "ALTER SYSTEM RESET recovery_min_apply_delay"))
		require.NoError(t, s.Exec(ctx, "SELECT pg_reload_conf()"))
		require.NoError(t, c.Sync(ctx))
	})
}

// pauseReplay stops a standby's replay until the test ends.
func pauseReplay(t testing.TB, c *pgcluster.Cluster, s *pgcluster.Server) {
	t.Helper()
	require.NoError(t, s.PauseReplay(testCtx(t)))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, s.ResumeReplay(ctx))
		require.NoError(t, c.Sync(ctx))
	})
}

// tokenOf returns the token a response carries in the header, and checks
// that the cookie carries the same.
func tokenOf(t testing.TB, resp *http.Response) string {
	t.Helper()
	tok := resp.Header.Get(flypghttp.DefaultHeaderName)
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == flypghttp.DefaultCookieName {
			cookie = c.Value
		}
	}
	require.Equal(t, tok, cookie, "the cookie and the header carry the same token")
	return tok
}

func tokenHeader(tok string) http.Header { return http.Header{flypghttp.DefaultHeaderName: {tok}} }
