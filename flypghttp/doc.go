// Package flypghttp carries flypg's read-your-writes guarantee across HTTP
// requests, nodes and regions with a causal token.
//
// Within one request flypg already waits, after each write, until the local
// replica has replayed it. The next request of the same user may land on
// another node, in another region, whose replica has not: a browser that
// POSTs in lax and is redirected to a GET served in ams would not see its own
// write. Middleware closes that gap. It records the commit LSN of the
// request's writes (flypg.Track) and hands it to the client as a token — a
// cookie for browsers and the Flypg-Token response header for API clients —
// and, on every request that brings one back, makes the request's statements
// first wait until the local database has replayed that LSN
// (flypg.AfterLSN). A read that still cannot be served locally in time runs on
// the primary, so a request carrying a token never reads older data than the
// write that minted it.
//
//	mux := http.NewServeMux()
//	mux.HandleFunc("POST /todos", createTodo)
//	mux.HandleFunc("GET /todos", listTodos)
//	http.ListenAndServe(":8080", flypghttp.Middleware(node)(mux))
//
// Tokens are opaque: flypg signs an LSN, the cluster's database identity and
// an expiry with a key derived from the cluster secret (flypg.Node.Token).
// A token that is malformed, forged, made by another cluster or app, made for
// another database or expired is ignored as if absent: the request is served
// as if it carried no token and never waits for it.
//
// The token goes out with the response headers, so it reflects the writes
// the handler made before it first wrote, flushed or set the status (or
// returned). Writes made after the headers went out — in the middle of a
// streamed body — cannot be announced and get no token. A response gets a
// token only when its request wrote; a request carrying a token that only
// reads leaves the client's token as it is.
//
// In dev mode (a node with no PRIMARY_REGION, whose Token is always empty)
// Middleware returns the handler itself: there is nothing to wait for.
//
// Middleware is plain func(http.Handler) http.Handler, so it fits net/http's
// ServeMux, chi's Use, echo.WrapMiddleware and gin through a small adapter;
// docs/consistency.md shows each, and compares the consistency modes.
package flypghttp
