package flypghttp

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/lsn"
)

// testNode starts a primary-region node on the shared cluster: enough to
// make and check tokens.
func testNode(t testing.TB) *flypg.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := flypg.Start(ctx, flypg.Config{
		Region: "syd", PrimaryRegion: "syd", DSN: testCluster(t).Primary.DSN(), App: "flypghttp-fuzz",
		NodeName: "fuzz", GossipAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", GossipProfile: "local",
		Secret: []byte("+/RgVTwrGEZJpSMv3BVvHiq2EhDkCuhUiVIvJi9Ec4Q="),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// FuzzIncoming: whatever a client puts in the token header and the Cookie
// header, the middleware neither panics nor finds a token in it; a genuine
// token sent first among the junk is still found; and a request that writes
// nothing gets no token back.
func FuzzIncoming(f *testing.F) {
	n := testNode(f)
	const want = lsn.LSN(0x16_B374D848)
	genuine := n.Token(want)
	require.NotEmpty(f, genuine)
	f.Add("", "")
	f.Add(genuine[:len(genuine)-1], DefaultCookieName+"="+genuine+"x")
	f.Fuzz(func(t *testing.T, header, cookie string) {
		m := Middleware(n)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		})).(*handler).m

		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(DefaultHeaderName, header)
		r.Header.Set("Cookie", cookie)
		if l := m.incoming(r); l != 0 {
			t.Fatalf("found LSN %s in header %q, cookie %q", l, header, cookie)
		}
		rec := httptest.NewRecorder()
		Middleware(n)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		})).ServeHTTP(rec, r)
		if rec.Header().Get(DefaultHeaderName) != "" || rec.Header().Get("Set-Cookie") != "" {
			t.Fatalf("a request that wrote nothing got a token: %v", rec.Header())
		}

		r.Header.Set(DefaultHeaderName, genuine+","+header)
		if l := m.incoming(r); l != want {
			t.Fatalf("genuine token first, then %q: got LSN %s, want %s", header, l, want)
		}
	})
}
