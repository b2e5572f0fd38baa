package flypghttp_test

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/flypghttp"
)

// chiNotes is the notes app on a chi router, the middleware in its stack
// beside chi's own (which wrap the ResponseWriter too).
func chiNotes(t *testing.T, n *flypg.Node) *httptest.Server {
	db := n.OpenDB()
	r := chi.NewRouter()
	r.Use(chimw.RequestID, chimw.Recoverer)
	r.Use(flypghttp.Middleware(n))
	r.Use(chimw.NoCache) // sets headers, then hands on a writer of its own kind
	r.Post("/notes", func(w http.ResponseWriter, r *http.Request) {
		id, err := addNote(r.Context(), db, "chi")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, id)
	})
	r.Get("/notes/{id}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		if err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM notes WHERE id = $1", chi.URLParam(r, "id")).Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if n == 0 {
			http.Error(w, "missing", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, "found")
	})
	s := httptest.NewServer(r)
	t.Cleanup(func() {
		s.Close()
		db.Close()
	})
	return s
}

// TestChi: the middleware in a chi stack carries read-your-writes from lax
// to ams (standby 250 ms late) for a browser, which without the cookie reads
// stale.
func TestChi(t *testing.T) {
	r := startRegions(t, nil)
	lax, ams := chiNotes(t, r.lax), chiNotes(t, r.ams)
	delayReplay(t, r.c, r.c.Replicas[1], 250*time.Millisecond)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar}

	stale := map[bool]int{}
	for range 5 {
		for _, withToken := range []bool{true, false} {
			c := browser
			if !withToken {
				c = &http.Client{}
			}
			id, resp := write(t, c, lax, nil)
			require.NotEmpty(t, tokenOf(t, resp))
			if ok, _ := visible(t, c, ams, id, nil); !ok {
				stale[withToken]++
			}
		}
	}
	assert.Zero(t, stale[true], "stale reads with the cookie")
	assert.Positive(t, stale[false], "stale reads without it: the test would show nothing otherwise")
}
