package wire

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Methods of the primary-region node's service.
const (
	MethodExec      = "sql.exec"     // one statement, autocommit or in a remote transaction
	MethodTxEnd     = "sql.tx.end"   // COMMIT or ROLLBACK of a remote transaction
	MethodProc      = "proc.call"    // a registered procedure
	MethodPrimary   = "node.primary" // is your database the primary? (health)
	ProtocolVersion = 1
)

// Statement asks a primary-region node to run one statement.
type Statement struct {
	Query string  `msgpack:"q"`
	Args  []Value `msgpack:"a,omitempty"`
	// Rows asks for the result rows (QueryContext) rather than a row count.
	Rows bool `msgpack:"r,omitempty"`
	// Tx names a remote transaction (0: autocommit). Begin is set on the
	// transaction's first statement, so BEGIN costs no round trip of its own.
	Tx    uint64     `msgpack:"t,omitempty"`
	Begin *TxOptions `msgpack:"b,omitempty"`
}

// TxOptions mirror driver.TxOptions.
type TxOptions struct {
	Isolation int  `msgpack:"i"`
	ReadOnly  bool `msgpack:"ro"`
}

// TxEnd ends a remote transaction.
type TxEnd struct {
	Tx     uint64 `msgpack:"t"`
	Commit bool   `msgpack:"c"`
}

// Result is a statement's outcome. LSN is the primary's WAL insert position
// read on the same session after the commit (0 inside a transaction, and
// when nothing was written).
type Result struct {
	RowsAffected int64     `msgpack:"n"`
	Columns      []Column  `msgpack:"c,omitempty"`
	Rows         [][]Value `msgpack:"r,omitempty"`
	LSN          uint64    `msgpack:"l,omitempty"`
	Err          *Error    `msgpack:"e,omitempty"`
	// TxOpen reports, for a statement of a remote transaction, that the
	// transaction exists on the server after it (even if the statement
	// failed): the caller must end it.
	TxOpen bool `msgpack:"o,omitempty"`
}

// Column carries a *sql.ColumnType's answers.
type Column struct {
	Name             string `msgpack:"n"`
	DatabaseTypeName string `msgpack:"d"`
	ScanType         string `msgpack:"s"`
	Length           int64  `msgpack:"l,omitempty"`
	HasLength        bool   `msgpack:"hl,omitempty"`
	Precision        int64  `msgpack:"p,omitempty"`
	Scale            int64  `msgpack:"sc,omitempty"`
	HasDecimal       bool   `msgpack:"hd,omitempty"`
	Nullable         bool   `msgpack:"nu,omitempty"`
	HasNullable      bool   `msgpack:"hn,omitempty"`
}

// Proc asks a node to run a registered procedure with an msgpack body.
type Proc struct {
	Name string `msgpack:"n"`
	Body []byte `msgpack:"b"`
}

// ProcResult is a procedure's outcome.
type ProcResult struct {
	Body []byte `msgpack:"b,omitempty"`
	LSN  uint64 `msgpack:"l,omitempty"`
	Err  *Error `msgpack:"e,omitempty"`
}

// Error kinds.
const (
	ErrPostgres = "pg"       // a PostgreSQL error; PG holds every field
	ErrCanceled = "canceled" // the caller cancelled; the server stopped the statement
	ErrDeadline = "deadline" // the caller's deadline passed; the server stopped the statement
	ErrProc     = "proc"     // unknown procedure, panic, or the procedure's own error
	ErrTxGone   = "txgone"   // the remote transaction does not exist (any more)
	ErrOther    = "other"
)

// Error is an error raised on the primary-region node.
type Error struct {
	Kind    string            `msgpack:"k"`
	Message string            `msgpack:"m"`
	PG      map[string]string `msgpack:"pg,omitempty"`
	Line    int32             `msgpack:"ln,omitempty"`
	Pos     int32             `msgpack:"po,omitempty"`
	IPos    int32             `msgpack:"ip,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Marshal encodes a message.
func Marshal(v any) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("flypg: encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes a message, refusing malformed input with an error.
func Unmarshal(b []byte, v any) error {
	if err := msgpack.Unmarshal(b, v); err != nil {
		return fmt.Errorf("flypg: decode %T: %w", v, err)
	}
	return nil
}
