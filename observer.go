package flypg

import (
	"context"

	"github.com/flypg/flypg/lsn"
)

// Observer is told about the two things flypg adds to a statement's
// latency: forwarding it to a serving node, and awaiting its replay. It is
// the hook tracing hangs off (a span for "forward to primary" and one for
// "await replay"; see docs/observability.md for an OpenTelemetry adapter)
// and costs one comparison when unset. Its methods are called on the
// statement's goroutine and must be fast; each Start is followed by
// exactly one End with the context Start returned.
type Observer interface {
	// ForwardStart is called before a request is sent; the context it
	// returns is passed to ForwardEnd (and is the parent of the request).
	ForwardStart(ctx context.Context, f Forward) context.Context
	// ForwardEnd is called when the request's reply has been read or
	// abandoned. node is the serving node ("" when none took it); err is
	// what went wrong on the way (nil when the reply came back whole,
	// whatever the statement's own outcome).
	ForwardEnd(ctx context.Context, node string, err error)
	// AwaitStart is called before waiting for the local copy to replay an
	// LSN; AwaitEnd when the wait is over (err nil: replayed).
	AwaitStart(ctx context.Context, a Await) context.Context
	AwaitEnd(ctx context.Context, err error)
}

// Forward describes a forwarded request.
type Forward struct {
	// Method is the request: "sql.batch" (statements), "sql.describe",
	// "proc.call", "sql.ping".
	Method string
	// Database is the database's name ("" for a procedure by region).
	Database string
	// Statements is the number of statements in a batch.
	Statements int
	// Query is the last statement's text (never its arguments).
	Query string
	// Read is set for a read sent to the primary.
	Read bool
}

// Await describes a wait for replay.
type Await struct {
	Database string
	LSN      lsn.LSN
	// AfterLSN is set for a read's wait under AfterLSN (else a write's
	// commit).
	AfterLSN bool
}
