package flypg

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/flypg/flypg/internal/backend"
	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/router"
)

// prepare turns a statement into its wire form with the wrapped driver's
// own encoding, describing it on the local copy or, when that cannot,
// on the primary (inside remote transaction tx when tx is set).
func (c *conn) prepare(ctx context.Context, query string, args []driver.NamedValue, rows bool, tx *remoteTx) (*wire.Statement, error) {
	n := c.node()
	return n.backend.Prepare(ctx, c.inner, query, args, rows, func(ctx context.Context, q string) (*wire.Description, error) {
		return c.describeRemote(ctx, q, tx)
	})
}

// describeRemote asks the primary for a statement's types. A description
// changes nothing on the primary: whatever goes wrong with it, the
// statement being prepared was not sent, and the error says so.
func (c *conn) describeRemote(ctx context.Context, query string, tx *remoteTx) (*wire.Description, error) {
	n := c.node()
	req := &wire.Describe{DB: c.db.id(), Query: query}
	node := ""
	if tx != nil && (tx.node != "" || len(tx.queue) > 0) {
		// What the transaction queued (CREATE TABLE t, then INSERT INTO t)
		// must reach it before the statement that depends on it is
		// described there.
		if err := tx.flush(ctx); err != nil {
			return nil, err
		}
		req.Tx, node = tx.id, tx.node
	}
	notSent := func(err error) error {
		return fmt.Errorf("%w: describing the statement on the primary failed, so it was not sent: %v", ErrNoPrimary, err)
	}
	rep, err := n.send(ctx, c.db, node, wire.MethodDescribe, req)
	if err != nil {
		if errors.Is(err, ErrUnknownOutcome) {
			err = notSent(err)
		}
		tx.notOpened(err)
		return nil, err
	}
	defer rep.close()
	var d wire.Description
	if err := rep.next(ctx, n, &d); err != nil {
		if errors.Is(err, ErrUnknownOutcome) {
			err = notSent(err)
		}
		tx.notOpened(err)
		return nil, err
	}
	if d.Err != nil {
		if tx != nil && !tx.begun && d.Err.Kind == wire.ErrPostgres && tx.open(ctx) == nil {
			// The transaction's first statement does not parse on the
			// primary. With pgx that statement's Parse runs inside the
			// transaction and aborts it: later statements fail (25P02),
			// Commit rolls back. So open the transaction and describe the
			// statement there, which aborts it the same way and returns
			// PostgreSQL's own error.
			rep.close()
			return c.describeRemote(ctx, query, tx)
		}
		err := n.remoteError(ctx, d.Err)
		if tx != nil {
			tx.failedErr(err)
			tx.notOpened(err)
		}
		return nil, err
	}
	return &d, nil
}

// forwardExec runs an autocommit statement on the primary — a write, or a
// read (OnPrimary, a detached connection) — and, for a write, awaits its
// replay.
func (c *conn) forwardExec(ctx context.Context, query string, args []driver.NamedValue, read bool) (driver.Result, error) {
	st, err := c.prepare(ctx, query, args, false, nil)
	if err != nil {
		return nil, err
	}
	rep, err := c.forwardBatch(ctx, st, read)
	if err != nil {
		return nil, err
	}
	defer rep.close()
	var affected int64
	var stmtErr error
	for {
		var p wire.Part
		if err := rep.next(ctx, c.node(), &p); err != nil {
			return nil, err
		}
		if p.Stmt != nil {
			affected = p.Stmt.RowsAffected
			if p.Stmt.Err != nil {
				stmtErr = c.node().remoteError(ctx, p.Stmt.Err)
			}
		}
		if p.End != nil {
			rep.close() // the reply is complete: the forward is over, the await is next
			err := c.db.finish(ctx, p.End, stmtErr, func() result { return result{rowsAffected: affected} })
			if err != nil {
				return nil, err
			}
			return driver.RowsAffected(affected), nil
		}
	}
}

// forwardQuery runs an autocommit statement that returns rows on the
// primary. For a write (INSERT … RETURNING) the rows are handed over once
// the local copy has replayed it.
func (c *conn) forwardQuery(ctx context.Context, query string, args []driver.NamedValue, read bool) (driver.Rows, error) {
	st, err := c.prepare(ctx, query, args, true, nil)
	if err != nil {
		return nil, err
	}
	rep, err := c.forwardBatch(ctx, st, read)
	if err != nil {
		return nil, err
	}
	return newRemoteRows(ctx, c, rep, !read, nil)
}

func (c *conn) forwardBatch(ctx context.Context, st *wire.Statement, read bool) (*reply, error) {
	n := c.node()
	n.counters.forwarded.Add(1)
	return n.send(ctx, c.db, "", wire.MethodBatch, &wire.Batch{DB: c.db.id(), Stmts: []wire.Statement{*st}, Read: read})
}

// finish turns the end of a batch into the caller's outcome (DESIGN
// "Outcomes"): the statement's own error (nothing committed); an unknown
// outcome; a commit whose position is unknown (*CommittedError); or a
// commit to await.
func (db *database) finish(ctx context.Context, end *wire.End, stmtErr error, res func() result) error {
	n := db.n
	if end.Err != nil {
		if end.Committed {
			n.counters.committedUnknownLSN.Add(1)
			r := res()
			return &CommittedError{Err: n.remoteError(ctx, end.Err), RowsAffected: r.rowsAffected, Columns: r.columns, Rows: r.rows}
		}
		if end.Err.Kind == wire.ErrUnknown {
			n.counters.unknownOutcomes.Add(1)
		}
		return n.remoteError(ctx, end.Err)
	}
	if stmtErr != nil {
		if end.LSN != 0 {
			// A procedure may have committed part of its work before
			// failing (the serving node says so with a position): wait for
			// that too, best effort, then report the failure.
			_ = db.wait(ctx, lsn.LSN(end.LSN), false)
		}
		return stmtErr
	}
	if !end.Committed {
		return nil
	}
	if err := db.committed(ctx, lsn.LSN(end.LSN), res); err != nil {
		return err
	}
	if end.LostLocks {
		return &SessionStateError{Statement: "a forwarded write", What: router.BoundAdvisoryLock.String(), Committed: true,
			Alternative: router.BoundAdvisoryLock.Alternative()}
	}
	return nil
}

// decodeAll decodes buffered parts into driver values, for an error that
// carries a query's result.
func decodeAll(dec backend.RowDecoder, parts []*wire.Part) [][]any {
	var rows [][]any
	for _, p := range parts {
		for i := range dec.Rows(p) {
			dest := make([]driver.Value, len(dec.Columns()))
			if dec.Decode(p, i, dest) != nil {
				return rows
			}
			row := make([]any, len(dest))
			for j, v := range dest {
				row[j] = v
			}
			rows = append(rows, row)
		}
	}
	return rows
}
