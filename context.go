package flypg

import (
	"context"
	"sync/atomic"

	"github.com/flypg/flypg/lsn"
)

// Consistency controls, per call, through the context (DESIGN
// "Consistency controls"). Side by side:
//
//	default     read-your-writes for the caller: a write returns once the
//	            local replica replayed it (Aurora's SESSION, MaxScale's
//	            causal_reads=local).
//	NoAwait     eventual: a write returns once the primary committed
//	            (Aurora's EVENTUAL, causal_reads=none).
//	OnPrimary   strong reads: reads run on the primary (Aurora's GLOBAL
//	            for that read, causal_reads=global).
//	AfterLSN    causal across requests, nodes and regions: reads wait for a
//	            token's LSN locally, else run on the primary
//	            (causal_reads=universal with a client-held position).

type (
	noAwaitKey   struct{}
	onPrimaryKey struct{}
	afterLSNKey  struct{}
	trackKey     struct{}
	pipelineKey  struct{}
)

// NoAwait returns a context under which writes forwarded to the primary
// return as soon as the primary has committed them, without waiting for the
// local replica to replay them (fly_postgres's await: false). Use it when
// the caller does not read its own write next; it saves the replication
// lag.
func NoAwait(ctx context.Context) context.Context {
	return context.WithValue(ctx, noAwaitKey{}, true)
}

func noAwait(ctx context.Context) bool {
	v, _ := ctx.Value(noAwaitKey{}).(bool)
	return v
}

// OnPrimary returns a context under which reads run on the primary: one
// round trip to the primary region, for the few reads that must see every
// committed write (a balance before a payment). A read-only transaction
// begun under it (db.BeginTx with ReadOnly) runs on the primary too, as a
// remote transaction; its Commit waits for nothing. Where the local
// database is the primary it changes nothing.
func OnPrimary(ctx context.Context) context.Context {
	return context.WithValue(ctx, onPrimaryKey{}, true)
}

func onPrimary(ctx context.Context) bool {
	v, _ := ctx.Value(onPrimaryKey{}).(bool)
	return v
}

// AfterLSN returns a context under which statements first wait until the
// local database has replayed l — the LSN of a write made elsewhere, from
// Tracked.LSN or a flypghttp token. The wait is bounded by
// Config.AwaitTimeout; a read that still cannot be served locally then
// runs on the primary, so it is never stale. A zero l changes nothing.
//
// The outcome is remembered for the context: once the local copy has
// reached l, later statements do not ask again; once a wait for it has
// failed, later reads go straight to the primary instead of each waiting
// out AwaitTimeout.
func AfterLSN(ctx context.Context, l lsn.LSN) context.Context {
	if l == 0 {
		return ctx
	}
	if prev := afterLSN(ctx); prev != nil && prev.lsn >= l {
		return ctx
	}
	return context.WithValue(ctx, afterLSNKey{}, &after{lsn: l})
}

// after is an AfterLSN target and what became of waiting for it.
type after struct {
	lsn   lsn.LSN
	state atomic.Int32 // 0 not known, 1 reached locally, -1 a wait failed
}

func afterLSN(ctx context.Context) *after {
	v, _ := ctx.Value(afterLSNKey{}).(*after)
	return v
}

// Tracked records the highest commit LSN of the writes made under a
// context returned by Track.
type Tracked struct{ max atomic.Uint64 }

// LSN is the highest commit LSN recorded so far (0: no write yet). With
// AfterLSN it is the causal token that carries read-your-writes to the
// next request, on any node in any region.
func (t *Tracked) LSN() lsn.LSN { return lsn.LSN(t.max.Load()) }

func (t *Tracked) record(l lsn.LSN) {
	for {
		cur := t.max.Load()
		if uint64(l) <= cur || t.max.CompareAndSwap(cur, uint64(l)) {
			return
		}
	}
}

// Track returns a context under which flypg records the commit LSN of
// every write — forwarded ones in any region, and, in the primary region,
// local ones (by reading the WAL position after each, only when tracked).
// Nested Track calls share the outermost Tracked.
func Track(ctx context.Context) (context.Context, *Tracked) {
	if t := tracked(ctx); t != nil {
		return ctx, t
	}
	t := &Tracked{}
	return context.WithValue(ctx, trackKey{}, t), t
}

func tracked(ctx context.Context) *Tracked {
	t, _ := ctx.Value(trackKey{}).(*Tracked)
	return t
}

// Pipeline returns a context that, passed to BeginTx, makes a remote
// transaction pipelined: Exec returns at once with a lazy Result, and
// queued statements travel together with the next Query, the next
// RowsAffected or LastInsertId call, or Commit — BEGIN, the statements and
// COMMIT in one round trip when nothing in between needs an answer. The
// first error aborts the transaction; it is returned there and by Commit,
// as the wrapped driver's own error. Outside a replica region it changes
// nothing.
func Pipeline(ctx context.Context) context.Context {
	return context.WithValue(ctx, pipelineKey{}, true)
}

func pipelined(ctx context.Context) bool {
	v, _ := ctx.Value(pipelineKey{}).(bool)
	return v
}
