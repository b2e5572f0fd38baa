package flypghttp_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net/http"
	"strings"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/flypghttp"
)

// The middleware around an app's whole mux: a POST in one region sets the
// token, and the GET the browser is redirected to sees the new row on
// whichever node serves it, in whichever region.
func ExampleMiddleware() {
	ctx := context.Background()
	cfg, err := flypg.ConfigFromEnv() // FLY_REGION, PRIMARY_REGION, DATABASE_URL, FLYPG_SECRET, …
	if err != nil {
		log.Fatal(err)
	}
	node, err := flypg.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	db := node.OpenDB()
	defer db.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /todos", func(w http.ResponseWriter, r *http.Request) {
		// r.Context() carries the token's wait and tracks this write.
		if _, err := db.ExecContext(r.Context(), "INSERT INTO todos (title) VALUES ($1)", r.FormValue("title")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/todos", http.StatusSeeOther) // the token goes out with the redirect
	})
	mux.HandleFunc("GET /todos", func(w http.ResponseWriter, r *http.Request) {
		var n int
		if err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM todos").Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d todos\n", n) // includes the one just posted, in any region
	})
	log.Fatal(http.ListenAndServe(":8080", flypghttp.Middleware(node)(mux)))
}

// An API client keeps the Flypg-Token response header of its last write and
// sends it back with its next request, to whichever region.
func ExampleMiddleware_apiClient() {
	var token string
	post, _ := http.NewRequest("POST", "https://api.example.com/todos", strings.NewReader(`{"title":"milk"}`))
	if resp, err := http.DefaultClient.Do(post); err == nil {
		resp.Body.Close()
		if t := resp.Header.Get(flypghttp.DefaultHeaderName); t != "" {
			token = t // only writes return one; keep the last
		}
	}
	get, _ := http.NewRequest("GET", "https://api.example.com/todos", nil)
	if token != "" {
		get.Header.Set(flypghttp.DefaultHeaderName, token)
	}
	if resp, err := http.DefaultClient.Do(get); err == nil {
		resp.Body.Close()
	}
}

var (
	node *flypg.Node
	app  http.Handler
)

// Static files and health checks neither wait for a token nor get one.
func ExampleWithSkip() {
	skip := flypghttp.WithSkip(func(r *http.Request) bool {
		return strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/healthz"
	})
	http.Handle("/", flypghttp.Middleware(node, skip)(app))
}

// Behind a proxy that terminates TLS without saying so in
// X-Forwarded-Proto, mark the cookie Secure explicitly.
func ExampleWithSecure() {
	http.Handle("/", flypghttp.Middleware(node, flypghttp.WithSecure(true))(app))
}

// Share the token between app.example.com and api.example.com.
func ExampleWithDomain() {
	http.Handle("/", flypghttp.Middleware(node, flypghttp.WithDomain("example.com"))(app))
}

// An app mounted under /shop keeps its cookie to itself.
func ExampleWithPath() {
	http.Handle("/shop/", flypghttp.Middleware(node, flypghttp.WithPath("/shop"))(app))
}

// A stricter cookie, for an app that is never entered from other sites'
// links while a write must still show.
func ExampleWithSameSite() {
	http.Handle("/", flypghttp.Middleware(node, flypghttp.WithSameSite(http.SameSiteStrictMode))(app))
}

// A pure API: no cookie, the token in a header of the API's own naming.
func ExampleWithCookieName() {
	api := flypghttp.Middleware(node,
		flypghttp.WithCookieName(""),
		flypghttp.WithHeaderName("X-Consistency-Token"))
	http.Handle("/api/", api(app))
}

// A browser-only app that sends no token header.
func ExampleWithHeaderName() {
	http.Handle("/", flypghttp.Middleware(node, flypghttp.WithHeaderName(""))(app))
}

// Outside HTTP — a job queue, a gRPC call — the same two controls the
// middleware uses carry a token by hand.
func Example_byHand() {
	ctx := context.Background()
	var db *sql.DB // node.OpenDB()

	// Producer: track the writes, hand the token on with the message.
	tctx, tracked := flypg.Track(ctx)
	if _, err := db.ExecContext(tctx, "UPDATE accounts SET balance = balance - 10 WHERE id = 1"); err != nil {
		log.Fatal(err)
	}
	token := node.Token(tracked.LSN())

	// Consumer, on any node: wait for it (an invalid token: just don't).
	if l, err := node.ParseToken(token); err == nil {
		ctx = flypg.AfterLSN(ctx, l)
	}
	var balance int
	_ = db.QueryRowContext(ctx, "SELECT balance FROM accounts WHERE id = 1").Scan(&balance)
}
