package checker

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"

	"github.com/flypg/flypg"
)

// DefaultTable is the table the checker writes, unless Config.Table says
// otherwise.
const DefaultTable = "flypg_checker"

// ProcName is the procedure OpCall calls with flypg.CallPrimary. The
// package registers it at init, so every process that imports the checker
// (the nodes of a test, the lab) can serve it.
const ProcName = "flypg.checker.insert"

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func checkTable(name string) error {
	if !identRE.MatchString(name) {
		return fmt.Errorf("checker: table name %q: want a lower-case SQL identifier (letters, digits, _)", name)
	}
	return nil
}

func createSQL(table string) string {
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s (
	id bigserial PRIMARY KEY,
	run text NOT NULL,
	client int NOT NULL,
	seq int NOT NULL,
	idx int NOT NULL,
	op text NOT NULL,
	at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE INDEX IF NOT EXISTS %[1]s_key ON %[1]s (run, client, seq)`, table)
}

// The rows' keys are deliberately not unique in the schema: a write applied
// twice must show up as two rows, not as a unique violation that hides it.
func insertSQL(table string) string {
	return fmt.Sprintf("INSERT INTO %s (run, client, seq, idx, op) VALUES ($1, $2, $3, $4, $5)", table)
}

func returningSQL(table string) string {
	return insertSQL(table) + " RETURNING client, seq, idx"
}

// callSQL inserts a procedure call's rows in one statement: all or none.
func callSQL(table string) string {
	return fmt.Sprintf("INSERT INTO %s (run, client, seq, idx, op) SELECT $1, $2, $3, g, 'call' FROM generate_series(0, $4::int - 1) g", table)
}

func readSQL(table string) string {
	return fmt.Sprintf("SELECT seq FROM %s WHERE run = $1 AND client = $2 AND seq = ANY($3)", table)
}

func finalSQL(table string) string {
	return fmt.Sprintf("SELECT client, seq, idx, count(*) FROM %s WHERE run = $1 AND client >= 0 GROUP BY client, seq, idx", table)
}

// CallRequest is the procedure's request.
type CallRequest struct {
	Table  string `msgpack:"t"`
	Run    string `msgpack:"r"`
	Client int    `msgpack:"c"`
	Seq    int    `msgpack:"s"`
	Rows   int    `msgpack:"n"`
}

func init() {
	flypg.RegisterProc(ProcName, callProc)
}

// callProc inserts the request's rows on the serving node's database (the
// primary) and answers how many it inserted.
func callProc(ctx context.Context, db *sql.DB, req CallRequest) (int64, error) {
	if err := checkTable(req.Table); err != nil {
		return 0, err
	}
	if req.Rows < 1 || req.Rows > 100 {
		return 0, fmt.Errorf("checker: procedure: %d rows: want 1–100", req.Rows)
	}
	res, err := db.ExecContext(ctx, callSQL(req.Table), req.Run, req.Client, req.Seq, req.Rows)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
