package server

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flypg/flypg/internal/backend"
	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/transport"
)

// txKey names a remote transaction: the caller's transaction id on one
// inbound link. A transaction never outlives its link.
type txKey struct {
	conn uint64
	tx   uint64
}

// remoteTx is a transaction a caller holds open on one pinned primary
// connection.
type remoteTx struct {
	peer   string
	target Target
	conn   *sql.Conn
	slot   chan struct{} // the peer's slots, to give ours back
	mu     sync.Mutex    // one batch at a time, in order
	busy   bool          // a batch is running: not idle
	idle   time.Time     // when the last batch ended
	done   chan struct{}
}

var errTxGone = errors.New(wire.TxGoneMessage)

// txBatch runs a batch of a remote transaction: BEGIN (on the first), the
// statements in order until one fails, and COMMIT or ROLLBACK (on the
// last).
func (s *Server) txBatch(ctx context.Context, req *transport.Request, t Target, b *wire.Batch, w *reply) error {
	key := txKey{conn: req.Conn.ID(), tx: b.Tx}
	var (
		tx  *remoteTx
		err error
	)
	if b.Begin != nil {
		if tx, err = s.begin(ctx, req, t, key, b.Begin); err != nil {
			if errors.Is(err, ErrDecline) {
				return err
			}
			return w.send(&wire.Part{End: &wire.End{Err: s.wireError(err)}})
		}
	} else if tx = s.lookup(key); tx == nil {
		return w.send(&wire.Part{End: &wire.End{Err: &wire.Error{Kind: wire.ErrTxGone, Message: errTxGone.Error()}}})
	}
	tx.mu.Lock()
	tx.busy = true
	defer func() {
		tx.busy, tx.idle = false, time.Now()
		tx.mu.Unlock()
	}()

	for i := range b.Stmts {
		n, err := s.cfg.Backend.Exec(ctx, tx.conn, &b.Stmts[i], w.sendPart)
		if err == nil {
			if err := w.send(&wire.Part{Stmt: &wire.StmtEnd{RowsAffected: n}}); err != nil {
				return err
			}
			continue
		}
		if b.Begin != nil && !b.Begin.ReadOnly && i == 0 && s.cfg.Backend.SQLState(err) == "25006" && !w.flushed {
			// BEGIN succeeded on what is now a standby, and the first
			// statement was refused as a write (in a read-write
			// transaction: a read-only one refuses writes itself, and
			// begin checked its copy's role): nothing of the transaction
			// ran, so decline it whole and let the caller open it on the
			// node that has the primary.
			tx.target.NotPrimary()
			s.goAbort(key, "the database is no longer the primary here")
			return fmt.Errorf("%w: database %s is no longer the primary here: %w", ErrDecline, tx.target.ID().Name, err)
		}
		if s.cfg.Backend.Outcome(err) == backend.Answered && s.cfg.Backend.SQLState(err) == "" {
			// Refused before PostgreSQL saw it (another driver's form):
			// PostgreSQL did not abort the transaction, so a COMMIT in
			// the batch would commit the statements before this one.
			// Abort it instead: nothing of the transaction commits.
			s.goAbort(key, "a statement was refused before it ran")
			gone := &wire.Error{Kind: wire.ErrTxGone, Message: fmt.Sprintf("%s: %v", errTxGone, err)}
			return w.send(&wire.Part{Stmt: &wire.StmtEnd{Err: s.wireError(err)}, End: &wire.End{Err: gone}})
		}
		if s.cfg.Backend.Outcome(err) != backend.Answered {
			// The connection is gone, and the transaction with it:
			// PostgreSQL rolled it back, nothing of it committed (its
			// COMMIT, if the batch had one, never ran).
			s.goAbort(key, "primary connection lost")
			gone := &wire.Error{Kind: wire.ErrTxGone, Message: fmt.Sprintf("%s: the primary connection was lost mid-transaction: %v", errTxGone, err)}
			return w.send(&wire.Part{Stmt: &wire.StmtEnd{Err: gone}, End: &wire.End{Err: gone}})
		}
		if err := w.send(&wire.Part{Stmt: &wire.StmtEnd{Err: s.wireError(err)}}); err != nil {
			return err
		}
		// The first error ends the batch: PostgreSQL refuses the rest
		// until the transaction ends, and a pipelined caller reports
		// this error for them. A COMMIT in the batch still runs, and
		// rolls back.
		break
	}
	switch b.End {
	case wire.TxCommit:
		return w.send(&wire.Part{End: s.commit(ctx, key, tx)})
	case wire.TxRollback:
		return w.send(&wire.Part{End: s.rollback(ctx, key, tx)})
	}
	return w.send(&wire.Part{End: &wire.End{TxOpen: true}})
}

// begin opens a transaction: a slot of the caller's (waiting for one until
// ctx ends), a pinned primary connection (waiting likewise), BEGIN.
func (s *Server) begin(ctx context.Context, req *transport.Request, t Target, key txKey, o *wire.TxOptions) (*remoteTx, error) {
	begin, err := s.cfg.Backend.BeginSQL(driver.TxOptions{Isolation: driver.IsolationLevel(o.Isolation), ReadOnly: o.ReadOnly})
	if err != nil {
		return nil, err
	}
	slot, err := s.takeSlot(ctx, req.Peer, key)
	if err != nil {
		return nil, err
	}
	tx := &remoteTx{peer: req.Peer, target: t, slot: slot, done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			<-slot
			if tx.conn != nil {
				tx.conn.Close()
			}
		}
	}()
	if tx.conn, err = s.conn(ctx, t); err != nil {
		return nil, err
	}
	if o.ReadOnly {
		// A read-only transaction sent here to read the primary
		// (OnPrimary): BEGIN would succeed on a copy demoted since the last
		// role check, and its reads be stale.
		if row, err := s.cfg.Backend.SimpleRow(ctx, tx.conn, "SELECT pg_catalog.pg_is_in_recovery()"); err == nil && len(row) == 1 && row[0] != nil && *row[0] == "t" {
			t.NotPrimary()
			return nil, fmt.Errorf("%w: database %s is no longer the primary here", ErrDecline, t.ID().Name)
		}
	}
	if _, err := s.cfg.Backend.Exec(ctx, tx.conn, &wire.Statement{Query: begin, Simple: true}, nil); err != nil {
		retire(tx.conn)
		if e := s.refused(t, err, &reply{}); e != nil {
			return nil, e
		}
		if s.cfg.Backend.Outcome(err) != backend.Answered {
			// BEGIN could not run (the primary's connection failed):
			// nothing of the transaction ran; another node may do better.
			t.NotPrimary()
			return nil, fmt.Errorf("%w: BEGIN failed on the primary's connection: %w", ErrDecline, err)
		}
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		retire(tx.conn)
		return nil, fmt.Errorf("%w: node is shutting down", ErrDecline)
	}
	if _, dup := s.txs[key]; dup {
		retire(tx.conn)
		return nil, fmt.Errorf("flypg: remote transaction %d already open", key.tx)
	}
	s.txs[key] = tx
	ok = true
	s.wg.Add(1)
	go s.watch(key, tx, req.Conn.Done())
	return tx, nil
}

// takeSlot waits for one of the peer's transaction slots.
func (s *Server) takeSlot(ctx context.Context, peer string, key txKey) (chan struct{}, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: node is shutting down", ErrDecline)
	}
	if _, dup := s.txs[key]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("flypg: remote transaction %d already open", key.tx)
	}
	slot := s.perPeer[peer]
	if slot == nil {
		slot = make(chan struct{}, s.cfg.MaxTxPerPeer)
		s.perPeer[peer] = slot
	}
	s.mu.Unlock()
	wctx, cancel := queueCtx(ctx)
	defer cancel()
	select {
	case slot <- struct{}{}:
		return slot, nil
	case <-wctx.Done():
		return nil, fmt.Errorf("flypg: waited for one of the %d remote-transaction slots of node %s: %w", s.cfg.MaxTxPerPeer, peer, wctx.Err())
	}
}

func (s *Server) lookup(key txKey) *remoteTx {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.txs[key]
}

// take removes a transaction from the table; whoever takes it ends it.
func (s *Server) take(key txKey) *remoteTx {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := s.txs[key]
	delete(s.txs, key)
	return tx
}

// commit ends the transaction with COMMIT (tx.mu held) and reads the
// commit position on its session. COMMIT of a failed transaction rolls
// back, as PostgreSQL does, and the driver's error says so.
func (s *Server) commit(ctx context.Context, key txKey, tx *remoteTx) *wire.End {
	if s.take(key) == nil {
		return &wire.End{Err: &wire.Error{Kind: wire.ErrTxGone, Message: errTxGone.Error()}}
	}
	stateful := true // until the session says otherwise
	defer func() { s.release(tx, stateful) }()
	if err := s.cfg.Backend.Commit(ctx, tx.conn); err != nil {
		if s.cfg.Backend.Outcome(err) != backend.Answered {
			// COMMIT is the commit point: unless PostgreSQL answered, it
			// may have got there.
			return &wire.End{Err: unknownOutcome(err)}
		}
		return &wire.End{Err: s.wireError(err)}
	}
	s.runAfterCommit(ctx)
	sess, ok, err := commitLSN(ctx, s.cfg.Backend, tx.conn, tx.target.Pool())
	stateful = sess.stateful || !ok
	end := &wire.End{Committed: true, LSN: uint64(sess.lsn), LostLocks: sess.locks}
	if !ok {
		end.Err = s.wireError(err)
	}
	return end
}

func (s *Server) rollback(ctx context.Context, key txKey, tx *remoteTx) *wire.End {
	if s.take(key) == nil {
		return &wire.End{Err: &wire.Error{Kind: wire.ErrTxGone, Message: errTxGone.Error()}}
	}
	_, err := s.cfg.Backend.Exec(ctx, tx.conn, &wire.Statement{Query: "rollback", Simple: true}, nil)
	stateful := true
	if err == nil {
		var sess session
		sess, err = judge(ctx, s.cfg.Backend, tx.conn, false)
		stateful = sess.stateful || err != nil
	}
	s.release(tx, stateful)
	return &wire.End{}
}

// release ends a taken transaction: its connection back to the pool (or
// closed, when its session holds state), its slot back to its peer.
func (s *Server) release(tx *remoteTx, stateful bool) {
	if stateful {
		retire(tx.conn)
	}
	tx.conn.Close()
	<-tx.slot
	close(tx.done)
}

// watch rolls a transaction back when its caller's link dies or it sits
// idle — counted from the end of its last batch — too long.
func (s *Server) watch(key txKey, tx *remoteTx, linkDone <-chan struct{}) {
	defer s.wg.Done()
	timer := time.NewTimer(s.cfg.TxIdleTimeout)
	defer timer.Stop()
	for {
		select {
		case <-tx.done:
			return
		case <-linkDone:
			s.abort(key, "caller's link closed")
			return
		case <-timer.C:
			wait := s.cfg.TxIdleTimeout
			if tx.mu.TryLock() {
				busy, idle := tx.busy, time.Since(tx.idle)
				tx.mu.Unlock()
				if !busy && idle >= s.cfg.TxIdleTimeout {
					s.abort(key, "idle timeout")
					return
				}
				if !busy {
					wait -= idle
				}
			}
			timer.Reset(wait)
		}
	}
}

// goAbort aborts in the background (the caller holds the transaction's
// lock), counted by the server's wait group so Close waits for it.
func (s *Server) goAbort(key txKey, why string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.abort(key, why)
	}()
}

// abort rolls back a transaction its caller can no longer end.
func (s *Server) abort(key txKey, why string) {
	tx := s.take(key)
	if tx == nil {
		return
	}
	s.log.Info("flypg: rolling back remote transaction", "peer", tx.peer, "tx", key.tx, "reason", why)
	// A batch still running ends soon: its request's context ends with the
	// link, and with the node's drain.
	tx.mu.Lock()
	defer tx.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.cfg.Backend.Exec(ctx, tx.conn, &wire.Statement{Query: "rollback", Simple: true}, nil)
	s.release(tx, true)
	if err != nil {
		s.log.Debug("flypg: rollback of an abandoned remote transaction failed (the connection is closed instead)", "err", err)
	}
}
