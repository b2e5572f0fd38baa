package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/flypghttp"
	"github.com/flypg/flypg/metrics"
)

// readyTimeout bounds /healthz's wait for the primary region: a health check
// must answer quickly, with ready=false rather than not at all.
const readyTimeout = 500 * time.Millisecond

// maxBody bounds a request body: a title does not need more.
const maxBody = 64 << 10

// maxBatch bounds POST /todos/batch: one procedure call holds one primary
// connection for the whole batch.
const maxBatch = 100

// execer is the part of *sql.DB that setup needs.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Todo is the JSON form of a row.
type Todo struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	Done      bool      `json:"done"`
	CreatedAt time.Time `json:"created_at"`
}

// Health is /healthz's answer.
type Health struct {
	Region        string `json:"region"`
	PrimaryRegion string `json:"primary_region"`
	Role          string `json:"role"`
	Ready         bool   `json:"ready"`
	Node          string `json:"node"`
	GossipAddr    string `json:"gossip_addr"`
	RPCAddr       string `json:"rpc_addr"`
}

const (
	rolePrimary = "primary"
	roleReplica = "replica"
	roleDev     = "dev"
)

// role mirrors flypg's own decision: no primary region (both regions
// "local") is dev mode, the primary region runs everything locally, any
// other region forwards writes.
func role(node *flypg.Node) string {
	region, primary := node.Region(), node.PrimaryRegion()
	switch {
	case primary == "" || primary == "local" && region == "local":
		return roleDev
	case region == primary:
		return rolePrimary
	default:
		return roleReplica
	}
}

type server struct {
	db   *sql.DB
	node *flypg.Node
	log  *slog.Logger
}

// newServer returns the HTTP handler. db is any database/sql handle on
// flypg (node.OpenDB()); node serves /healthz, /stats and /metrics, and
// carries read-your-writes across requests (flypghttp).
//
// The todo routes run under flypghttp.Middleware: a response to a request
// that wrote carries a causal token (the flypg-token cookie, and the
// Flypg-Token header for API clients), and a request that brings one back
// — to this node or to one in any other region — first waits until its
// local database has replayed that write. Without it, a client whose next
// request lands in another region (a load balancer, a user on the move)
// could miss its own write there.
func newServer(db *sql.DB, node *flypg.Node, log *slog.Logger) http.Handler {
	s := &server{db: db, node: node, log: log}
	app := http.NewServeMux()
	app.HandleFunc("POST /todos", s.create)
	app.HandleFunc("POST /todos/batch", s.createBatch)
	app.HandleFunc("GET /todos", s.list)
	app.HandleFunc("GET /todos/{id}", s.get)
	app.HandleFunc("POST /todos/{id}/complete", s.complete)

	mux := http.NewServeMux()
	mux.Handle("/", flypghttp.Middleware(node)(app))
	// Health checks and scrapes must never wait for a token.
	mux.HandleFunc("GET /healthz", s.health)
	mux.HandleFunc("GET /stats", s.stats)
	mux.Handle("GET /metrics", metricsHandler(node))
	return s.logRequests(mux)
}

// metricsHandler serves the node's flypg metrics and the Go runtime's in
// Prometheus's text format, from a registry of its own (not the global
// one, so that two nodes in one process — as in the tests — do not clash).
func metricsHandler(node *flypg.Node) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(node), collectors.NewGoCollector())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

const columns = "id, title, done, created_at"

func (s *server) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title string `json:"title"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid JSON body: "+err.Error(), nil)
		return
	}
	if strings.TrimSpace(in.Title) == "" {
		s.fail(w, r, http.StatusBadRequest, "title is required", nil)
		return
	}
	// RETURNING makes this a write that returns rows: flypg forwards it and
	// waits for the local replica before handing the row back, so the next
	// GET in this region finds it.
	t, err := scanTodo(s.db.QueryRowContext(writeCtx(r),
		"INSERT INTO todos (title) VALUES ($1) RETURNING "+columns, in.Title))
	if err != nil {
		s.dbFail(w, r, err)
		return
	}
	w.Header().Set("Location", "/todos/"+strconv.FormatInt(t.ID, 10))
	s.reply(w, http.StatusCreated, t)
}

// createManyProc is the procedure behind POST /todos/batch. It is
// registered in every node (flypg requires it) and runs on a primary-region
// node, next to the primary: the whole batch costs one round trip between
// regions instead of one per row.
const createManyProc = "todo.create_many"

type batchRequest struct{ Titles []string }
type batchResponse struct{ Todos []Todo }

func init() { flypg.RegisterProc(createManyProc, createMany) }

// createMany inserts the titles in one transaction: all or none.
func createMany(ctx context.Context, db *sql.DB, req batchRequest) (_ batchResponse, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return batchResponse{}, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	out := batchResponse{Todos: make([]Todo, 0, len(req.Titles))}
	for _, title := range req.Titles {
		t, err := scanTodo(tx.QueryRowContext(ctx, "INSERT INTO todos (title) VALUES ($1) RETURNING "+columns, title))
		if err != nil {
			return batchResponse{}, err
		}
		out.Todos = append(out.Todos, t)
	}
	return out, tx.Commit()
}

// createBatch creates several todos with one flypg.CallPrimary: in a replica
// region it answers once the local replica has replayed the batch (unless
// ?noawait=1), so the todos are readable here at once.
func (s *server) createBatch(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Titles []string `json:"titles"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid JSON body: "+err.Error(), nil)
		return
	}
	if len(in.Titles) == 0 || len(in.Titles) > maxBatch {
		s.fail(w, r, http.StatusBadRequest, "titles must hold 1 to "+strconv.Itoa(maxBatch)+" titles", nil)
		return
	}
	for _, t := range in.Titles {
		if strings.TrimSpace(t) == "" {
			s.fail(w, r, http.StatusBadRequest, "every title is required", nil)
			return
		}
	}
	out, err := flypg.CallPrimary[batchRequest, batchResponse](writeCtx(r), s.node, createManyProc, batchRequest{Titles: in.Titles})
	if err != nil {
		s.dbFail(w, r, err)
		return
	}
	s.reply(w, http.StatusCreated, out.Todos)
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	rows, err := s.db.QueryContext(r.Context(), "SELECT "+columns+" FROM todos ORDER BY id")
	if err != nil {
		s.dbFail(w, r, err)
		return
	}
	defer rows.Close()
	todos := []Todo{}
	for rows.Next() {
		t, err := scanTodo(rows)
		if err != nil {
			s.dbFail(w, r, err)
			return
		}
		todos = append(todos, t)
	}
	if err := rows.Err(); err != nil {
		s.dbFail(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, todos)
}

func (s *server) get(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	t, err := scanTodo(s.db.QueryRowContext(r.Context(), "SELECT "+columns+" FROM todos WHERE id = $1", id))
	if err != nil {
		s.dbFail(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, t)
}

func (s *server) complete(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	t, err := scanTodo(s.db.QueryRowContext(writeCtx(r),
		"UPDATE todos SET done = true WHERE id = $1 RETURNING "+columns, id))
	if err != nil {
		s.dbFail(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, t)
}

func (s *server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	h := Health{
		Region:        s.node.Region(),
		PrimaryRegion: s.node.PrimaryRegion(),
		Role:          role(s.node),
		Ready:         s.node.WaitReady(ctx) == nil,
		Node:          s.node.Name(),
		GossipAddr:    s.node.GossipAddr(),
		RPCAddr:       s.node.RPCAddr(),
	}
	status := http.StatusOK
	if !h.Ready {
		// Load balancers take a node that cannot write out of rotation.
		status = http.StatusServiceUnavailable
	}
	s.reply(w, status, h)
}

// stats answers the node's flypg counters: how many statements ran locally,
// were forwarded, waited for replay.
func (s *server) stats(w http.ResponseWriter, r *http.Request) {
	s.reply(w, http.StatusOK, s.node.Stats())
}

// writeCtx is the request's context, without the wait for replay when the
// client asked for ?noawait=1: it then answers as soon as the primary has
// committed, and a read in this region may not see the write yet.
func writeCtx(r *http.Request) context.Context {
	if v := r.URL.Query().Get("noawait"); v == "1" || v == "true" {
		return flypg.NoAwait(r.Context())
	}
	return r.Context()
}

func (s *server) id(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.fail(w, r, http.StatusBadRequest, "id must be a positive integer", nil)
		return 0, false
	}
	return id, true
}

type scanner interface{ Scan(dest ...any) error }

func scanTodo(row scanner) (Todo, error) {
	var t Todo
	err := row.Scan(&t.ID, &t.Title, &t.Done, &t.CreatedAt)
	return t, err
}

// dbFail maps database and flypg errors to HTTP statuses.
func (s *server) dbFail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		s.fail(w, r, http.StatusNotFound, "todo not found", nil)
	case errors.Is(err, flypg.ErrAwaitTimeout):
		// The write is durable; only this region has not caught up yet.
		s.fail(w, r, http.StatusAccepted, "saved, but not yet visible in this region; retry the read shortly", err)
	case errors.Is(err, flypg.ErrNoPrimary):
		s.fail(w, r, http.StatusServiceUnavailable, "primary region unreachable; nothing was saved", err)
	case errors.Is(err, flypg.ErrUnknownOutcome):
		s.fail(w, r, http.StatusBadGateway, "link to the primary region lost; the write may or may not have been saved", err)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		s.fail(w, r, http.StatusGatewayTimeout, "request cancelled or timed out", err)
	default:
		s.fail(w, r, http.StatusInternalServerError, "internal error", err)
	}
}

// fail answers {"error": msg}; err, if any, goes to the log only.
func (s *server) fail(w http.ResponseWriter, r *http.Request, status int, msg string, err error) {
	if err != nil {
		level := slog.LevelWarn
		if status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(r.Context(), level, "todo: request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Any("err", err))
	}
	s.reply(w, status, map[string]string{"error": msg})
}

func (s *server) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Warn("todo: write response", "err", err)
	}
}

// statusRecorder remembers the status for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "todo: request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Duration("took", time.Since(start)))
	})
}
