package wire

// Methods of a serving node. A node answers a method it does not know with
// a transport error that says so before running anything, so a newer caller
// can fall back to an older method (see docs/ARCHITECTURE.md, "Versions").
const (
	// MethodBatch runs statements: one in autocommit, or any number in a
	// remote transaction (opening and/or ending it). The reply is a stream
	// of Parts ending with one whose End is set.
	MethodBatch = "sql.batch"
	// MethodDescribe returns a statement's parameter and result types, for
	// a caller that cannot ask its own local database.
	MethodDescribe = "sql.describe"
	// MethodPing asks whether the node takes writes for a database.
	MethodPing = "sql.ping"
	// MethodProc runs a registered procedure; the reply is a ProcResult,
	// possibly preceded by Parts carrying its body in pieces.
	MethodProc = "proc.call"
)

// DB names a database: the cluster's system identifier and the database
// name. SysID 0 means the caller has not reached its local copy yet: URL,
// the primary's host, port and database name as the app configured it (the
// same DATABASE_URL in every region), must then match the serving node's.
type DB struct {
	SysID uint64 `msgpack:"s,omitempty"`
	Name  string `msgpack:"n"`
	URL   string `msgpack:"u,omitempty"`
}

// TxControl ends a remote transaction after a batch's statements.
type TxControl uint8

const (
	TxKeep     TxControl = iota // leave it open
	TxCommit                    // COMMIT, then read the commit LSN
	TxRollback                  // ROLLBACK
)

// Batch asks a serving node to run statements on its copy of DB, which
// must be the primary.
type Batch struct {
	DB DB `msgpack:"d"`
	// Tx names a remote transaction on the caller's link; 0 is autocommit,
	// and then Stmts holds exactly one statement.
	Tx uint64 `msgpack:"t,omitempty"`
	// Begin opens the transaction before the statements: BEGIN travels with
	// the first statement instead of costing a round trip of its own.
	Begin *TxOptions  `msgpack:"b,omitempty"`
	Stmts []Statement `msgpack:"s,omitempty"`
	// End ends the transaction after the statements (a pipelined
	// transaction sends BEGIN, its statements and COMMIT in one batch).
	End TxControl `msgpack:"e,omitempty"`
	// Read marks an autocommit statement that only reads (OnPrimary, or a
	// node whose local database is unreachable): no commit LSN is wanted.
	Read bool `msgpack:"r,omitempty"`
}

// TxOptions mirror driver.TxOptions.
type TxOptions struct {
	Isolation int  `msgpack:"i"`
	ReadOnly  bool `msgpack:"ro,omitempty"`
}

// Statement is one statement of a batch, with its arguments in the form of
// the wrapped driver: Params for pgx (encoded by the caller with pgx's own
// type map, so the primary stores exactly what pgx would have sent), Values
// for drivers that take database/sql driver values (lib/pq).
type Statement struct {
	Query string `msgpack:"q"`
	// Simple runs the text with the simple query protocol, as pgx does for
	// a statement without arguments: several statements may be in it.
	Simple bool    `msgpack:"sp,omitempty"`
	Params *Params `msgpack:"p,omitempty"`
	Values []Value `msgpack:"v,omitempty"`
	// Rows asks for the result rows (QueryContext) rather than a count.
	Rows bool `msgpack:"r,omitempty"`
}

// Params are a statement's parameters as pgx's extended query builder made
// them: type OIDs, format codes, and values (nil for NULL), plus the result
// format codes to ask for.
type Params struct {
	OIDs    []uint32 `msgpack:"o,omitempty"`
	Formats []int16  `msgpack:"f,omitempty"`
	Values  [][]byte `msgpack:"v,omitempty"` // msgpack keeps nil (NULL) apart from empty
	Results []int16  `msgpack:"r,omitempty"`
}

// Part is one message of a batch's reply. A statement that returns rows
// sends its columns (Fields or Columns, with Described set), then its rows
// in as many parts as their size needs, then a part with Stmt set; the last
// part of the reply has End set.
type Part struct {
	Described bool       `msgpack:"dd,omitempty"`
	Fields    []Field    `msgpack:"f,omitempty"` // pgx: the row description
	Columns   []Column   `msgpack:"c,omitempty"` // database/sql drivers: column types
	Raw       [][][]byte `msgpack:"x,omitempty"` // pgx: rows as PostgreSQL sent them (nil = NULL)
	Rows      [][]Value  `msgpack:"w,omitempty"` // database/sql drivers: driver values
	Stmt      *StmtEnd   `msgpack:"se,omitempty"`
	End       *End       `msgpack:"be,omitempty"`
}

// StmtEnd ends one statement of a batch.
type StmtEnd struct {
	RowsAffected int64  `msgpack:"n,omitempty"`
	Err          *Error `msgpack:"e,omitempty"`
}

// End ends a batch's reply.
type End struct {
	// LSN is the primary's WAL insert position read right after the commit,
	// on the same session: for an autocommit write, or a batch that
	// committed its transaction. 0 otherwise, and when it could not be read
	// (Committed says whether anything committed).
	LSN uint64 `msgpack:"l,omitempty"`
	// Committed reports that the batch committed something: an autocommit
	// write that ran, or a COMMIT that succeeded. With LSN 0 it means the
	// commit position could not be read.
	Committed bool `msgpack:"k,omitempty"`
	// LostLocks reports that the write left session advisory locks on its
	// primary connection, which was closed rather than pooled: the locks
	// were released when it returned.
	LostLocks bool `msgpack:"ll,omitempty"`
	// TxOpen reports that the remote transaction exists after the batch
	// (even if a statement failed): the caller must end it.
	TxOpen bool `msgpack:"o,omitempty"`
	// Err is a failure of the batch as a whole: the transaction could not
	// be opened or found, the commit failed, the outcome is unknown. A
	// statement's own error is in its StmtEnd.
	Err *Error `msgpack:"e,omitempty"`
}

// Ping asks a node whether it takes writes for DB: it answers with an
// empty reply, or declines.
type Ping struct {
	DB DB `msgpack:"d"`
}

// Describe asks for a statement's parameter and result types, on the
// remote transaction's connection when Tx is set.
type Describe struct {
	DB    DB     `msgpack:"d"`
	Tx    uint64 `msgpack:"t,omitempty"`
	Query string `msgpack:"q"`
}

// Description answers Describe.
type Description struct {
	ParamOIDs []uint32 `msgpack:"p,omitempty"`
	Fields    []Field  `msgpack:"f,omitempty"`
	Err       *Error   `msgpack:"e,omitempty"`
}

// Field mirrors pgconn.FieldDescription.
type Field struct {
	Name                 string `msgpack:"n"`
	TableOID             uint32 `msgpack:"t,omitempty"`
	TableAttributeNumber uint16 `msgpack:"a,omitempty"`
	DataTypeOID          uint32 `msgpack:"o"`
	DataTypeSize         int16  `msgpack:"s,omitempty"`
	TypeModifier         int32  `msgpack:"m,omitempty"`
	Format               int16  `msgpack:"f,omitempty"`
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

// Proc asks a node to run a registered procedure with an msgpack body. DB,
// when set (CallPrimary), names the database whose commit position the
// caller will wait for: the node reads it after the procedure returns.
type Proc struct {
	Name string `msgpack:"n"`
	Body []byte `msgpack:"b"`
	DB   *DB    `msgpack:"d,omitempty"`
}

// ProcResult is a procedure's outcome. A body larger than one message
// comes in several, all but the last with More set.
type ProcResult struct {
	Body []byte `msgpack:"b,omitempty"`
	More bool   `msgpack:"mo,omitempty"`
	LSN  uint64 `msgpack:"l,omitempty"`
	// Committed is set when the procedure returned but its LSN could not be
	// read: what it committed is durable, the position unknown.
	Committed bool   `msgpack:"k,omitempty"`
	Err       *Error `msgpack:"e,omitempty"`
}

// Error kinds.
const (
	ErrPostgres       = "pg"       // a PostgreSQL error; PG holds every field
	ErrCanceled       = "canceled" // the caller cancelled; the server stopped the statement
	ErrDeadline       = "deadline" // the caller's deadline passed; the server stopped the statement
	ErrProc           = "proc"     // unknown procedure, panic, or the procedure's own error
	ErrTxGone         = "txgone"   // the remote transaction does not exist (any more)
	ErrUnknown        = "unknown"  // the outcome is unknown: the primary connection failed mid-statement
	ErrCommitRollback = "commit-rollback"
	ErrArgs           = "args" // the arguments could not be used; nothing ran
	ErrOther          = "other"
)

// TxGoneMessage opens the Message of every ErrTxGone error; what follows
// it, after ": ", says why (the primary connection was lost, …).
const TxGoneMessage = "flypg: remote transaction rolled back on the primary-region node (link lost, idle timeout, or restart)"

// Error is an error raised on the serving node.
type Error struct {
	Kind    string            `msgpack:"k"`
	Message string            `msgpack:"m"`
	PG      map[string]string `msgpack:"pg,omitempty"`
	Line    int32             `msgpack:"ln,omitempty"`
	Pos     int32             `msgpack:"po,omitempty"`
	IPos    int32             `msgpack:"ip,omitempty"`
}

func (e *Error) Error() string { return e.Message }
