package flypghttp_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/flypghttp"
)

// BenchmarkMiddleware measures what the middleware adds to a request that
// does not touch the database — its fixed cost, against the bare handler
// in the same run: dev mode (should be nothing), no token, a valid token
// (parsed and put on the context), an invalid one. Compare ns/op and
// allocs/op with "bare".
func BenchmarkMiddleware(b *testing.B) {
	c := flypghttp.TestCluster(b)
	node := startNode(b, "syd", c.Primary.DSN(), nil, nil)
	dev, err := flypg.Start(testCtx(b), flypg.Config{DSN: c.Primary.DSN(), Logger: quiet()})
	require.NoError(b, err)
	b.Cleanup(func() { _ = dev.Close() })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	valid := node.Token(1 << 32)
	for _, bc := range []struct {
		name    string
		handler http.Handler
		token   string
	}{
		{"bare", h, ""},
		{"dev", flypghttp.Middleware(dev)(h), ""},
		{"no-token", flypghttp.Middleware(node)(h), ""},
		{"valid-token", flypghttp.Middleware(node)(h), valid},
		{"invalid-token", flypghttp.Middleware(node)(h), valid[:len(valid)-2] + "AA"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/", nil)
			if bc.token != "" {
				req.Header.Set(flypghttp.DefaultHeaderName, bc.token)
			}
			b.ReportAllocs()
			for b.Loop() {
				bc.handler.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
