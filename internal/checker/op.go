package checker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flypg/flypg"
)

// OpKind is what an operation does.
type OpKind uint8

const (
	// OpExec is one autocommit INSERT through ExecContext.
	OpExec OpKind = iota + 1
	// OpReturning is one autocommit INSERT … RETURNING through QueryContext.
	OpReturning
	// OpTx is a read-write transaction of TxRows INSERTs, then Commit.
	OpTx
	// OpPipelineTx is OpTx under flypg.Pipeline.
	OpPipelineTx
	// OpCall is flypg.CallPrimary of a procedure that inserts CallRows rows
	// in one statement.
	OpCall
	// OpRead reads some of the client's own keys in autocommit.
	OpRead
	// OpReadTx is OpRead in a read-only transaction.
	OpReadTx
)

var opNames = [...]string{OpExec: "exec", OpReturning: "returning", OpTx: "tx", OpPipelineTx: "pipeline-tx",
	OpCall: "call", OpRead: "read", OpReadTx: "read-tx"}

func (k OpKind) String() string {
	if int(k) < len(opNames) && opNames[k] != "" {
		return opNames[k]
	}
	return fmt.Sprintf("op(%d)", k)
}

// MarshalText names the kind in JSON.
func (k OpKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name.
func (k *OpKind) UnmarshalText(b []byte) error {
	for i, n := range opNames {
		if n != "" && n == string(b) {
			*k = OpKind(i)
			return nil
		}
	}
	return fmt.Errorf("checker: unknown operation kind %q", b)
}

// Write reports whether the operation writes.
func (k OpKind) Write() bool { return k >= OpExec && k <= OpCall }

// Outcome is an operation's result, classified by what it says about the
// write (DESIGN "Outcomes").
type Outcome uint8

const (
	// OK: nil. A write committed and was replayed locally.
	OK Outcome = iota
	// AwaitTimeout: *flypg.AwaitError. Committed, not replayed in time.
	AwaitTimeout
	// Committed: *flypg.CommittedError, or a *flypg.SessionStateError with
	// Committed set. Committed, commit position unknown.
	Committed
	// Unknown: flypg.ErrUnknownOutcome. May have committed.
	Unknown
	// NoPrimary: flypg.ErrNoPrimary. Not committed.
	NoPrimary
	// TxGone: flypg.ErrTxGone. Not committed.
	TxGone
	// PgError: a *pgconn.PgError, or pgx.ErrTxCommitRollback. Not
	// committed.
	PgError
	// SessionState: a *flypg.SessionStateError refused before running.
	// Not committed.
	SessionState
	// ProcError: a *flypg.ProcError — the procedure's own failure; what
	// it committed before failing is the procedure's business, so it may
	// have committed.
	ProcError
	// Context: a bare context error (deadline or cancellation) of no other
	// kind, or sql.ErrTxDone (database/sql rolled the transaction back as
	// its context ended). DESIGN does not classify it; the checker accepts
	// either outcome, as pgx's would be, and counts which it was.
	Context
	// Other: any other error. By the documented rules such an error reads
	// as "not committed", so the write must be absent — except on a
	// PassThrough target, where it may be the wrapped driver's own
	// ambiguous error (outcome unknown).
	Other
)

var outcomeNames = [...]string{OK: "ok", AwaitTimeout: "await-timeout", Committed: "committed", Unknown: "unknown-outcome",
	NoPrimary: "no-primary", TxGone: "tx-gone", PgError: "postgres-error", SessionState: "session-state",
	ProcError: "proc-error", Context: "context", Other: "other"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", o)
}

// MarshalText names the outcome in JSON.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText reads an outcome's name.
func (o *Outcome) UnmarshalText(b []byte) error {
	for i, n := range outcomeNames {
		if n == string(b) {
			*o = Outcome(i)
			return nil
		}
	}
	return fmt.Errorf("checker: unknown outcome %q", b)
}

// Outcomes lists every outcome, in order.
func Outcomes() []Outcome {
	out := make([]Outcome, len(outcomeNames))
	for i := range out {
		out[i] = Outcome(i)
	}
	return out
}

// Documented reports whether the outcome is one DESIGN documents for a
// write: anything but Other. (Context errors are the caller's own
// deadline.)
func (o Outcome) Documented() bool { return o != Other }

// Classify maps an error from a flypg call to its outcome. The order
// matters: an *AwaitError may wrap a context error, ErrTxGone may wrap
// ErrNoPrimary.
func Classify(err error) Outcome {
	var (
		ae *flypg.AwaitError
		ce *flypg.CommittedError
		se *flypg.SessionStateError
		pe *flypg.ProcError
		pg *pgconn.PgError
	)
	switch {
	case err == nil:
		return OK
	case errors.As(err, &ae):
		return AwaitTimeout
	case errors.As(err, &ce), errors.Is(err, flypg.ErrCommitted):
		return Committed
	case errors.As(err, &se):
		if se.Committed {
			return Committed
		}
		return SessionState
	case errors.Is(err, flypg.ErrUnknownOutcome):
		return Unknown
	case errors.Is(err, flypg.ErrTxGone):
		return TxGone
	case errors.Is(err, flypg.ErrNoPrimary):
		return NoPrimary
	case errors.As(err, &pg), errors.Is(err, pgx.ErrTxCommitRollback):
		return PgError
	case errors.As(err, &pe):
		return ProcError
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Context
	case errors.Is(err, sql.ErrTxDone):
		// database/sql rolled the transaction back when its context ended,
		// before Commit was called: the caller's deadline.
		return Context
	}
	return Other
}

// Expect is what the primary must hold of a write, given its outcome.
type Expect uint8

const (
	// Present: every row exactly once.
	Present Expect = iota + 1
	// Absent: no row.
	Absent
	// Maybe: every row exactly once, or none.
	Maybe
)

func (e Expect) String() string {
	switch e {
	case Present:
		return "present"
	case Absent:
		return "absent"
	case Maybe:
		return "maybe"
	}
	return "none"
}

// Expect is what the primary must hold of op's rows (0 for a read).
func (op *Op) Expect() Expect {
	if !op.Kind.Write() {
		return 0
	}
	if op.BeforeCommit {
		// The transaction failed before Commit was called: COMMIT was
		// never sent, so nothing of it can have committed.
		return Absent
	}
	switch op.Outcome {
	case OK, AwaitTimeout, Committed:
		return Present
	case Unknown, ProcError, Context:
		return Maybe
	case Other:
		if op.PassThrough {
			return Maybe
		}
	}
	return Absent
}

// Op is one operation of one client, as recorded.
type Op struct {
	Client int    `json:"client"`
	Seq    int    `json:"seq"`
	DB     string `json:"db"`
	Region string `json:"region"`
	// Node is the name of the flypg node the target used at the time.
	Node string `json:"node,omitempty"`
	Kind OpKind `json:"kind"`
	// Rows is how many rows a write inserts (idx 0 … Rows-1).
	Rows    int     `json:"rows,omitempty"`
	Outcome Outcome `json:"outcome"`
	// BeforeCommit: a transaction whose error came before Commit was
	// called (it was then rolled back).
	BeforeCommit bool `json:"before_commit,omitempty"`
	// PassThrough: the target may run statements on the wrapped driver
	// untouched (Target.PassThrough), whose own errors are ambiguous.
	PassThrough bool   `json:"pass_through,omitempty"`
	Err         string `json:"err,omitempty"`
	// Start and End are offsets from the run's start.
	Start time.Duration `json:"start"`
	End   time.Duration `json:"end"`
	// A read's keys: the writes it asked about and the rows it saw.
	Asked []int `json:"asked,omitempty"`
	Seen  []int `json:"seen,omitempty"`
}

// Took is how long the call took.
func (op *Op) Took() time.Duration { return op.End - op.Start }

func (op *Op) String() string {
	var b strings.Builder
	node := op.DB
	if op.Node != "" && op.Node != op.DB {
		node += "/" + op.Node
	}
	fmt.Fprintf(&b, "[%8.3fs +%6.1fms] client %d #%d on %s (%s) %-11s %s", op.Start.Seconds(), float64(op.Took())/1e6,
		op.Client, op.Seq, node, op.Region, op.Kind, op.Outcome)
	if op.Kind.Write() {
		fmt.Fprintf(&b, " rows=%d", op.Rows)
	}
	if op.BeforeCommit {
		b.WriteString(" (before commit)")
	}
	if len(op.Asked) > 0 {
		fmt.Fprintf(&b, " asked=%v seen=%v", op.Asked, op.Seen)
	}
	if op.Err != "" {
		fmt.Fprintf(&b, ": %s", op.Err)
	}
	return b.String()
}

// errString keeps an error's text short enough for a history line.
func errString(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
