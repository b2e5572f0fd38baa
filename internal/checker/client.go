package checker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
	"unsafe"

	"github.com/flypg/flypg"
)

// rec is one operation, compact: a 60 s soak of a thousand clients records
// hundreds of thousands, and the memory curve it reports should be
// flypg's, not the checker's.
type rec struct {
	start, end int64 // ns since the run's start
	err        int32 // 1-based index into client.errs; 0: none
	node       uint16
	kind       OpKind
	outcome    Outcome
	rows       uint8
	flags      uint8
}

const (
	flagBeforeCommit = 1 << iota
	flagSeen         // a read saw its rows
	flagPassThrough
)

// client is one sequential client: its history and what its reads must
// see.
type client struct {
	l   *Load
	id  int
	t   *Target
	rng *rand.Rand

	mu         sync.Mutex // guards recs, errs, nodes for size() and the report
	recs       []rec
	errs       []string
	nodes      []string // node names by index, as the target was swapped
	ring       []Op     // the last HistoryDepth operations in full (reads' keys)
	lastAck    int      // Seq of the last write acknowledged with nil; -1 none
	present    []int    // writes that must be on the primary, by Seq
	lastWrite  int      // Seq of the last write; -1 none
	violations []Violation
}

func newClient(l *Load, id int, t *Target, seed uint64) *client {
	return &client{l: l, id: id, t: t, rng: rand.New(rand.NewPCG(seed, uint64(id))), lastAck: -1, lastWrite: -1}
}

func (c *client) size() (ops int64, bytes uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	bytes = uint64(cap(c.recs))*uint64(unsafe.Sizeof(rec{})) + uint64(cap(c.present))*8
	for _, e := range c.errs {
		bytes += uint64(len(e)) + 16
	}
	return int64(len(c.recs)), bytes
}

func (c *client) pick() OpKind {
	ws := c.l.cfg.Mix.weights()
	n := c.rng.IntN(c.l.cfg.Mix.total())
	for _, w := range ws {
		if w.w <= 0 {
			continue
		}
		if n < w.w {
			return w.k
		}
		n -= w.w
	}
	return OpRead
}

func (c *client) run(ctx context.Context) {
	for {
		select {
		case <-c.l.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		c.once(ctx)
		if d := c.l.cfg.Think; d > 0 {
			select {
			case <-time.After(d):
			case <-c.l.stop:
				return
			}
		}
	}
}

// once runs and records one operation.
func (c *client) once(ctx context.Context) {
	cfg := &c.l.cfg
	kind := c.pick()
	if (kind == OpRead || kind == OpReadTx) && c.lastWrite < 0 {
		kind = OpExec // nothing to read yet
	}
	st := c.t.current()
	op := Op{Client: c.id, Seq: len(c.recs), DB: c.t.Name, Region: c.t.Region, Node: st.name, Kind: kind,
		PassThrough: c.t.PassThrough}
	var asked []int
	if !kind.Write() {
		asked = c.askFor()
	}
	octx, cancel := context.WithTimeout(ctx, cfg.OpTimeout)
	op.Start = c.l.Now()
	var err error
	var bad string
	switch kind {
	case OpExec:
		op.Rows = 1
		bad, err = c.exec(octx, st, op.Seq)
	case OpReturning:
		op.Rows = 1
		bad, err = c.returning(octx, st, op.Seq)
	case OpTx, OpPipelineTx:
		op.Rows = cfg.TxRows
		if kind == OpPipelineTx {
			op.Rows = cfg.PipelineRows
		}
		op.BeforeCommit, err = c.tx(octx, st, op.Seq, op.Rows, kind == OpPipelineTx)
	case OpCall:
		op.Rows = cfg.CallRows
		bad, err = c.call(octx, st, op.Seq, op.Rows)
	case OpRead, OpReadTx:
		op.Asked = asked
		op.Seen, err = c.read(octx, st, asked, kind == OpReadTx)
	}
	op.End = c.l.Now()
	cancel()
	op.Outcome = Classify(err)
	op.Err = errString(err)
	c.record(&op, bad)
}

// askFor picks the writes a read asks about: the last one acknowledged,
// the last one made, and random others that must be there.
func (c *client) askFor() []int {
	want := c.l.cfg.ReadKeys
	asked := make([]int, 0, want)
	has := func(s int) bool {
		for _, a := range asked {
			if a == s {
				return true
			}
		}
		return false
	}
	if c.lastAck >= 0 {
		asked = append(asked, c.lastAck)
	}
	if c.lastWrite >= 0 && !has(c.lastWrite) {
		asked = append(asked, c.lastWrite)
	}
	for tries := 0; len(asked) < want && len(c.present) > 0 && tries < 2*want; tries++ {
		if s := c.present[c.rng.IntN(len(c.present))]; !has(s) {
			asked = append(asked, s)
		}
	}
	return asked
}

func (c *client) record(op *Op, bad string) {
	cfg := &c.l.cfg
	var vs []Violation
	if bad != "" && op.Outcome == OK {
		vs = append(vs, Violation{Kind: BadResult, Op: *op, Detail: bad})
	}
	if !op.Kind.Write() && op.Outcome == OK {
		vs = append(vs, CheckRead(op, c.lastAck, c.lookup, cfg.LossAllowed)...)
		for _, s := range op.Seen {
			if s >= 0 && s < len(c.recs) {
				c.recs[s].flags |= flagSeen
			}
		}
	}
	r := rec{start: int64(op.Start), end: int64(op.End), kind: op.Kind, outcome: op.Outcome, rows: uint8(op.Rows)}
	if op.BeforeCommit {
		r.flags |= flagBeforeCommit
	}
	if op.PassThrough {
		r.flags |= flagPassThrough
	}
	c.mu.Lock()
	if op.Err != "" {
		c.errs = append(c.errs, op.Err)
		r.err = int32(len(c.errs))
	}
	if len(c.nodes) == 0 || c.nodes[len(c.nodes)-1] != op.Node {
		c.nodes = append(c.nodes, op.Node)
	}
	r.node = uint16(len(c.nodes) - 1)
	c.recs = append(c.recs, r)
	if op.Kind.Write() && op.Expect() == Present {
		c.present = append(c.present, op.Seq)
	}
	c.mu.Unlock()

	c.ring = append(c.ring, *op)
	if len(c.ring) > cfg.HistoryDepth {
		c.ring = append(c.ring[:0], c.ring[len(c.ring)-cfg.HistoryDepth:]...)
	}
	for i := range vs {
		vs[i].History = append([]Op(nil), c.ring...)
	}
	c.violations = append(c.violations, vs...)

	if op.Kind.Write() {
		c.lastWrite = op.Seq
		if op.Outcome == OK {
			c.lastAck = op.Seq
		}
		if op.Expect() == Present {
			c.l.acked(c.t, op.Outcome == OK)
		}
	}
	if op.Outcome == OK {
		c.l.recordLatency(op.Kind, op.Took())
	}
}

// lookup is a write of this client's, by Seq, as CheckRead wants it.
func (c *client) lookup(seq int) *Op {
	if seq < 0 || seq >= len(c.recs) {
		return nil
	}
	op := c.op(seq)
	return &op
}

// op expands a record.
func (c *client) op(seq int) Op {
	r := c.recs[seq]
	op := Op{Client: c.id, Seq: seq, DB: c.t.Name, Region: c.t.Region, Kind: r.kind, Rows: int(r.rows),
		Outcome: r.outcome, BeforeCommit: r.flags&flagBeforeCommit != 0, PassThrough: r.flags&flagPassThrough != 0,
		Start: time.Duration(r.start), End: time.Duration(r.end)}
	if int(r.node) < len(c.nodes) {
		op.Node = c.nodes[r.node]
	}
	if r.err > 0 {
		op.Err = c.errs[r.err-1]
	}
	return op
}

// ops is the client's whole history, reads' keys included for those still
// in the ring.
func (c *client) ops() []Op {
	out := make([]Op, len(c.recs))
	for i := range c.recs {
		out[i] = c.op(i)
	}
	for _, r := range c.ring {
		out[r.Seq] = r
	}
	return out
}

// The operations. Each returns the error the app would see; bad is a
// success whose result is wrong.

func (c *client) exec(ctx context.Context, st *targetState, seq int) (bad string, err error) {
	cfg := &c.l.cfg
	res, err := st.db.ExecContext(ctx, insertSQL(cfg.Table), cfg.RunID, c.id, seq, 0, "exec")
	if err != nil {
		return "", err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Sprintf("RowsAffected = %d, %v; want 1", n, err), nil
	}
	return "", nil
}

func (c *client) returning(ctx context.Context, st *targetState, seq int) (bad string, err error) {
	cfg := &c.l.cfg
	rows, err := st.db.QueryContext(ctx, returningSQL(cfg.Table), cfg.RunID, c.id, seq, 0, "returning")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var cl, s, idx int
		if err := rows.Scan(&cl, &s, &idx); err != nil {
			return "", err
		}
		if cl != c.id || s != seq || idx != 0 {
			bad = fmt.Sprintf("RETURNING gave (%d, %d, %d), want (%d, %d, 0)", cl, s, idx, c.id, seq)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if err := rows.Close(); err != nil {
		return "", err
	}
	if n != 1 && bad == "" {
		bad = fmt.Sprintf("RETURNING gave %d rows, want 1", n)
	}
	return bad, nil
}

// tx runs a read-write transaction; beforeCommit reports an error that
// came before Commit was called.
func (c *client) tx(ctx context.Context, st *targetState, seq, rows int, pipeline bool) (beforeCommit bool, err error) {
	cfg := &c.l.cfg
	bctx := ctx
	name := "tx"
	if pipeline {
		bctx, name = flypg.Pipeline(ctx), "pipeline-tx"
	}
	tx, err := st.db.BeginTx(bctx, nil)
	if err != nil {
		return true, err
	}
	for idx := range rows {
		if _, err := tx.ExecContext(bctx, insertSQL(cfg.Table), cfg.RunID, c.id, seq, idx, name); err != nil {
			_ = tx.Rollback()
			return true, err
		}
	}
	return false, tx.Commit()
}

func (c *client) call(ctx context.Context, st *targetState, seq, rows int) (bad string, err error) {
	cfg := &c.l.cfg
	req := CallRequest{Table: cfg.Table, Run: cfg.RunID, Client: c.id, Seq: seq, Rows: rows}
	var n int64
	if st.node == nil {
		// A plain database: the procedure's statement, run directly.
		var res sql.Result
		if res, err = st.db.ExecContext(ctx, callSQL(cfg.Table), req.Run, req.Client, req.Seq, req.Rows); err == nil {
			n, err = res.RowsAffected()
		}
	} else {
		n, err = flypg.CallPrimary[CallRequest, int64](ctx, st.node, ProcName, req)
	}
	if err == nil && n != int64(rows) {
		bad = fmt.Sprintf("the procedure inserted %d rows, want %d", n, rows)
	}
	return bad, err
}

func (c *client) read(ctx context.Context, st *targetState, asked []int, inTx bool) (seen []int, err error) {
	cfg := &c.l.cfg
	keys := make([]int32, len(asked))
	for i, a := range asked {
		keys[i] = int32(a)
	}
	type queryer interface {
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	}
	var q queryer = st.db
	var tx *sql.Tx
	if inTx {
		if tx, err = st.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}); err != nil {
			return nil, err
		}
		defer func() { _ = tx.Rollback() }()
		q = tx
	}
	rows, err := q.QueryContext(ctx, readSQL(cfg.Table), cfg.RunID, c.id, keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	seen = []int{}
	for rows.Next() {
		var s int
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		seen = append(seen, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if tx != nil {
		if err := tx.Commit(); err != nil && !errors.Is(err, sql.ErrTxDone) {
			return nil, err
		}
	}
	return seen, nil
}
