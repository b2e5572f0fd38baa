package checker

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Key names one row the checker writes: a client's operation (by sequence
// number) and the row's index within it.
type Key struct{ Client, Seq, Idx int }

// Rows counts, per key, the rows found on the primary.
type Rows map[Key]int

// OpID names one operation: a client and its sequence number.
type OpID struct{ Client, Seq int }

// Violation kinds.
const (
	// Lost: a write acknowledged as committed is not on the primary.
	Lost = "lost"
	// Duplicate: a row is on the primary (or in a read) more than once.
	Duplicate = "duplicate"
	// Partial: some but not all of a write's rows are there.
	Partial = "partial"
	// NotCommittedPresent: a write whose error said "not committed" is on
	// the primary.
	NotCommittedPresent = "not-committed-present"
	// Vanished: a write a read saw is not on the primary at the end.
	Vanished = "vanished"
	// StaleRead: a read missed a write its client had made before it and
	// that must be visible (read-your-writes).
	StaleRead = "stale-read"
	// PhantomRead: a read saw a write whose error said "not committed".
	PhantomRead = "phantom-read"
	// PartialRead: a read saw part of an atomic write.
	PartialRead = "partial-read"
	// Overran: a call returned later than its deadline plus the slack.
	Overran = "overran-deadline"
	// Unexpected: a row on the primary that no recorded operation wrote.
	Unexpected = "unexpected-row"
	// BadResult: a write returned success with a wrong result (row count,
	// RETURNING row).
	BadResult = "bad-result"
)

// Violation is one broken promise, with the history around it.
type Violation struct {
	Kind   string `json:"kind"`
	Op     Op     `json:"op"`
	Detail string `json:"detail"`
	// History is the client's operations around Op (Op included).
	History []Op `json:"history,omitempty"`
}

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n  op: %s\n", v.Kind, v.Detail, v.Op.String())
	if len(v.History) > 0 {
		fmt.Fprintf(&b, "  history of client %d:\n", v.Op.Client)
		for i := range v.History {
			mark := "   "
			if v.History[i].Seq == v.Op.Seq {
				mark = "=> "
			}
			fmt.Fprintf(&b, "  %s%s\n", mark, v.History[i].String())
		}
	}
	return b.String()
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Timeout is the deadline each call had (0: not checked); Slack what
	// it may overrun by (scheduling, the race detector).
	Timeout, Slack time.Duration
	// LossAllowed marks writes that may be missing without a violation:
	// e.g. writes acknowledged by the old primary before a failover to an
	// asynchronous replica.
	LossAllowed func(*Op) bool
	// Depth is how many operations of history a violation carries on each
	// side (default 10).
	Depth int
	// SkipReads leaves reads unchecked (they were checked as they ran).
	SkipReads bool
	// Seen marks writes that reads saw when reads were checked as they
	// ran; Verify adds those it finds in the reads of ops that carry
	// Asked and Seen.
	Seen map[OpID]bool
}

func (o VerifyOptions) depth() int {
	if o.Depth <= 0 {
		return 10
	}
	return o.Depth
}

func (o VerifyOptions) lossAllowed(op *Op) bool { return o.LossAllowed != nil && o.LossAllowed(op) }

// Verify checks histories against what the primary holds. ops may hold any
// number of clients' operations; rows are the rows found on the primary
// (rows of clients with no operation in ops are ignored).
func Verify(ops []Op, rows Rows, opt VerifyOptions) []Violation {
	byClient := map[int][]Op{}
	for _, op := range ops {
		byClient[op.Client] = append(byClient[op.Client], op)
	}
	clients := make([]int, 0, len(byClient))
	for c := range byClient {
		clients = append(clients, c)
	}
	sort.Ints(clients)
	var out []Violation
	for _, c := range clients {
		h := byClient[c]
		sort.SliceStable(h, func(i, j int) bool { return h[i].Seq < h[j].Seq })
		out = append(out, verifyClient(h, rows, opt)...)
	}
	// Rows no operation accounts for.
	known := map[[2]int]bool{}
	for _, op := range ops {
		if op.Kind.Write() {
			known[[2]int{op.Client, op.Seq}] = true
		}
	}
	var stray []Key
	for k := range rows {
		if _, mine := byClient[k.Client]; mine && !known[[2]int{k.Client, k.Seq}] {
			stray = append(stray, k)
		}
	}
	sort.Slice(stray, func(i, j int) bool {
		a, b := stray[i], stray[j]
		return a.Client < b.Client || a.Client == b.Client && (a.Seq < b.Seq || a.Seq == b.Seq && a.Idx < b.Idx)
	})
	for _, k := range stray {
		out = append(out, Violation{Kind: Unexpected, Op: Op{Client: k.Client, Seq: k.Seq},
			Detail:  fmt.Sprintf("row %+v (%d×) was written by no recorded operation", k, rows[k]),
			History: around(byClient[k.Client], k.Seq, opt.depth())})
	}
	return out
}

// verifyClient checks one client's history (sorted by Seq).
func verifyClient(h []Op, rows Rows, opt VerifyOptions) []Violation {
	var out []Violation
	add := func(i int, kind, detail string) {
		out = append(out, Violation{Kind: kind, Op: h[i], Detail: detail, History: around(h, h[i].Seq, opt.depth())})
	}
	sawInRead := map[int]bool{} // seq → a read saw its rows
	bySeq := make(map[int]*Op, len(h))
	lastAck := -1
	for i := range h {
		op := &h[i]
		if opt.Timeout > 0 && op.Took() > opt.Timeout+opt.Slack {
			add(i, Overran, fmt.Sprintf("took %v with a %v deadline", op.Took().Round(time.Millisecond), opt.Timeout))
		}
		if op.Kind.Write() {
			bySeq[op.Seq] = op
			if op.Outcome == OK {
				lastAck = op.Seq
			}
			continue
		}
		if opt.SkipReads || op.Asked == nil {
			continue
		}
		lookup := func(seq int) *Op { return bySeq[seq] }
		for _, v := range CheckRead(op, lastAck, lookup, opt.LossAllowed) {
			out = append(out, v.withHistory(around(h, op.Seq, opt.depth())))
		}
		for _, s := range op.Seen {
			sawInRead[s] = true
		}
	}
	for i := range h {
		op := &h[i]
		if !op.Kind.Write() {
			continue
		}
		n, distinct := count(rows, op)
		exp := op.Expect()
		wasSeen := sawInRead[op.Seq] || opt.Seen[OpID{op.Client, op.Seq}]
		switch {
		case n > distinct:
			add(i, Duplicate, fmt.Sprintf("%d rows on the primary for %d keys: applied more than once", n, distinct))
		case distinct > 0 && distinct < op.Rows:
			add(i, Partial, fmt.Sprintf("%d of its %d rows on the primary: half a write", distinct, op.Rows))
		case exp == Present && distinct == 0 && !opt.lossAllowed(op):
			add(i, Lost, fmt.Sprintf("acknowledged (%s) but none of its %d rows is on the primary", op.Outcome, op.Rows))
		case exp == Absent && distinct > 0:
			add(i, NotCommittedPresent, fmt.Sprintf("its error (%s) says it did not commit, but its rows are on the primary", op.Outcome))
		case wasSeen && exp != Absent && distinct == 0 && !opt.lossAllowed(op):
			add(i, Vanished, "a read saw its rows, but they are not on the primary")
		}
	}
	return out
}

func (v Violation) withHistory(h []Op) Violation {
	v.History = h
	return v
}

// count is how many rows of op the primary holds, and for how many
// distinct keys.
func count(rows Rows, op *Op) (n, distinct int) {
	for idx := range op.Rows {
		if c := rows[Key{op.Client, op.Seq, idx}]; c > 0 {
			n += c
			distinct++
		}
	}
	return n, distinct
}

// CheckRead checks one read against the client's writes before it: the
// rows it saw of each write it asked about. write looks a write up by its
// Seq; lastAck is the Seq of the client's last write acknowledged with nil
// before the read (-1: none). A write must be visible when it was
// acknowledged with nil, or when it committed (nil, *AwaitError,
// *CommittedError) before lastAck: the replica replays in commit order, so
// having replayed the later write it has replayed the earlier one — unless
// lossAllowed says the write may have been lost. read.Seen lists the Seq of
// each row seen, once per row.
func CheckRead(read *Op, lastAck int, write func(seq int) *Op, lossAllowed func(*Op) bool) []Violation {
	seen := map[int]int{}
	for _, s := range read.Seen {
		seen[s]++
	}
	var out []Violation
	add := func(kind, detail string) {
		out = append(out, Violation{Kind: kind, Op: *read, Detail: detail})
	}
	for _, s := range read.Asked {
		w := write(s)
		if w == nil || !w.Kind.Write() {
			continue
		}
		got := seen[s]
		exp := w.Expect()
		must := exp == Present && (w.Outcome == OK || w.Seq <= lastAck) && !(lossAllowed != nil && lossAllowed(w))
		switch {
		case got > w.Rows:
			add(Duplicate, fmt.Sprintf("saw %d rows of write #%d, which has %d", got, s, w.Rows))
		case must && got == 0:
			add(StaleRead, fmt.Sprintf("missed write #%d (%s), made before it on the same node (read-your-writes)", s, w.Outcome))
		case got > 0 && got < w.Rows:
			add(PartialRead, fmt.Sprintf("saw %d of the %d rows of write #%d", got, w.Rows, s))
		case exp == Absent && got > 0:
			add(PhantomRead, fmt.Sprintf("saw write #%d, whose error (%s) says it did not commit", s, w.Outcome))
		}
	}
	return out
}

// around is the part of a client's history within depth operations of seq.
func around(h []Op, seq, depth int) []Op {
	i := sort.Search(len(h), func(i int) bool { return h[i].Seq >= seq })
	lo, hi := max(0, i-depth), min(len(h), i+1+max(2, depth/2))
	return append([]Op(nil), h[lo:hi]...)
}
