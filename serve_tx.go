package flypg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/transport"
)

// execInTx runs a statement of a remote transaction. The first statement
// carries the BEGIN options and opens the transaction on a dedicated
// primary connection.
func (s *server) execInTx(ctx context.Context, req *transport.Request, st *wire.Statement, args []any) *wire.Result {
	key := txKey{conn: req.Conn.ID(), tx: st.Tx}
	var (
		t   *serverTx
		err error
	)
	if st.Begin != nil {
		t, err = s.beginTx(ctx, req, key, st.Begin)
	} else {
		t, err = s.lookupTx(key)
	}
	if errors.Is(err, ErrTxGone) {
		return &wire.Result{Err: &wire.Error{Kind: wire.ErrTxGone, Message: err.Error()}}
	}
	if err != nil {
		return &wire.Result{Err: s.wireError(ctx, err)}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.used = time.Now()
	if s.leavesSessionState(st.Query) {
		t.retire = true // a plain SET inside the transaction outlives it
	}
	res, err := run(ctx, t.tx, st, args)
	if err != nil {
		res = &wire.Result{Err: s.wireError(ctx, err)}
	}
	res.TxOpen = true
	return res
}

func (s *server) beginTx(ctx context.Context, req *transport.Request, key txKey, o *wire.TxOptions) (*serverTx, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("flypg: node is shutting down")
	}
	if _, dup := s.txs[key]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("flypg: remote transaction %d already open", key.tx)
	}
	if s.perPeer[req.Peer] >= maxRemoteTxPerPeer {
		s.mu.Unlock()
		return nil, fmt.Errorf("flypg: node %s already holds %d open remote transactions on this primary-region node (the limit)", req.Peer, maxRemoteTxPerPeer)
	}
	s.perPeer[req.Peer]++ // reserve before the slow part
	s.mu.Unlock()

	t, err := s.openTx(ctx, o)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || s.closed {
		s.perPeer[req.Peer]--
		if err == nil {
			t.cancel()
			t.conn.Close()
			err = errors.New("flypg: node is shutting down")
		}
		return nil, err
	}
	t.peer = req.Peer
	s.txs[key] = t
	s.wg.Add(1)
	go s.watchTx(key, t, req.Conn.Done())
	return t, nil
}

func (s *server) openTx(ctx context.Context, o *wire.TxOptions) (*serverTx, error) {
	conn, err := s.node.localDB().Conn(ctx)
	if err != nil {
		return nil, err
	}
	// The transaction lives until commit, rollback, link loss or idleness —
	// not just for the request that opened it — so it gets its own context;
	// cancelling it makes database/sql roll the transaction back.
	life, cancel := context.WithCancel(context.Background())
	tx, err := conn.BeginTx(life, &sql.TxOptions{Isolation: sql.IsolationLevel(o.Isolation), ReadOnly: o.ReadOnly})
	if err != nil {
		cancel()
		conn.Close()
		return nil, err
	}
	return &serverTx{conn: conn, tx: tx, cancel: cancel, used: time.Now(), done: make(chan struct{})}, nil
}

func (s *server) lookupTx(key txKey) (*serverTx, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.txs[key]
	if !ok {
		return nil, ErrTxGone
	}
	return t, nil
}

// watchTx rolls a transaction back when its caller's link dies or it idles
// too long; it ends when the transaction ends.
func (s *server) watchTx(key txKey, t *serverTx, linkDone <-chan struct{}) {
	defer s.wg.Done()
	idle := time.NewTimer(remoteTxIdleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-linkDone:
			s.abortTx(key, "caller's link closed")
			return
		case <-idle.C:
			t.mu.Lock()
			since := time.Since(t.used)
			t.mu.Unlock()
			if since >= remoteTxIdleTimeout {
				s.abortTx(key, "idle timeout")
				return
			}
			idle.Reset(remoteTxIdleTimeout - since)
		}
	}
}

// take removes a transaction from the table; whoever takes it ends it.
func (s *server) take(key txKey) *serverTx {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.txs[key]
	if !ok {
		return nil
	}
	delete(s.txs, key)
	if s.perPeer[t.peer]--; s.perPeer[t.peer] <= 0 {
		delete(s.perPeer, t.peer)
	}
	return t
}

func (s *server) abortTx(key txKey, why string) {
	t := s.take(key)
	if t == nil {
		return
	}
	s.node.cfg.Logger.Info("flypg: rolling back remote transaction", "peer", t.peer, "tx", key.tx, "reason", why)
	// Ending the transaction's context makes database/sql roll it back and
	// cancel a statement still running in it; then wait for that statement.
	t.cancel()
	t.mu.Lock()
	defer t.mu.Unlock()
	_ = t.tx.Rollback()
	t.release()
	close(t.done)
}

func (s *server) endTx(ctx context.Context, req *transport.Request, end wire.TxEnd) *wire.Result {
	key := txKey{conn: req.Conn.ID(), tx: end.Tx}
	t := s.take(key)
	if t == nil {
		return &wire.Result{Err: &wire.Error{Kind: wire.ErrTxGone, Message: ErrTxGone.Error()}}
	}
	t.mu.Lock()
	defer func() {
		t.cancel()
		t.release()
		close(t.done)
		t.mu.Unlock()
	}()
	if !end.Commit {
		if err := t.tx.Rollback(); err != nil {
			return &wire.Result{Err: s.wireError(ctx, err)}
		}
		return &wire.Result{}
	}
	if err := t.tx.Commit(); err != nil {
		return &wire.Result{Err: s.wireError(ctx, err)}
	}
	l, err := insertLSN(ctx, t.conn)
	if err != nil {
		return &wire.Result{Err: s.wireError(ctx, err)}
	}
	return &wire.Result{LSN: l}
}

// close rolls back every open remote transaction and waits for the
// watchers.
func (s *server) close() {
	s.mu.Lock()
	s.closed = true
	keys := make([]txKey, 0, len(s.txs))
	for k := range s.txs {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		s.abortTx(k, "node closing")
	}
	s.wg.Wait()
}

// openTxCount is the number of open remote transactions (for tests and
// stats).
func (s *server) openTxCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.txs)
}

// release hands the transaction's connection back to the pool, or closes
// it when a statement left session state on it.
func (t *serverTx) release() {
	if t.retire {
		retire(t.conn)
	}
	_ = t.conn.Close()
}
