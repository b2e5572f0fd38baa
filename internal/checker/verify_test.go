package checker_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/checker"
)

// w is a write of client 0 at seq s with the given outcome, ending at s ms.
func w(s int, kind checker.OpKind, rows int, o checker.Outcome) checker.Op {
	return checker.Op{Client: 0, Seq: s, DB: "lax", Region: "lax", Kind: kind, Rows: rows, Outcome: o,
		Start: time.Duration(s) * time.Millisecond, End: time.Duration(s)*time.Millisecond + 500*time.Microsecond}
}

func read(s int, asked, seen []int) checker.Op {
	op := w(s, checker.OpRead, 0, checker.OK)
	op.Asked, op.Seen = asked, seen
	return op
}

func beforeCommit(op checker.Op) checker.Op {
	op.BeforeCommit = true
	return op
}

func passThrough(op checker.Op) checker.Op {
	op.PassThrough = true
	return op
}

func took(op checker.Op, d time.Duration) checker.Op {
	op.End = op.Start + d
	return op
}

// rows builds the primary's rows: for each seq, how many times each of its
// rows is there (one count per row index).
func rows(m map[int][]int) checker.Rows {
	out := checker.Rows{}
	for seq, counts := range m {
		for idx, n := range counts {
			if n > 0 {
				out[checker.Key{Client: 0, Seq: seq, Idx: idx}] = n
			}
		}
	}
	return out
}

func kinds(vs []checker.Violation) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s#%d", v.Kind, v.Op.Seq))
	}
	return out
}

// The verifier itself, fed histories with planted violations: each must be
// reported (and a clean history must not be).
func TestVerifyFindsPlantedViolations(t *testing.T) {
	const (
		exec = checker.OpExec
		tx   = checker.OpTx
		call = checker.OpCall
	)
	cases := []struct {
		name string
		ops  []checker.Op
		rows checker.Rows
		opt  checker.VerifyOptions
		want []string
	}{
		{"clean history", []checker.Op{w(0, exec, 1, checker.OK), w(1, tx, 2, checker.AwaitTimeout), w(2, exec, 1, checker.NoPrimary),
			read(3, []int{0, 1, 2}, []int{0, 1, 1}), w(4, call, 2, checker.Unknown), w(5, exec, 1, checker.Unknown)},
			rows(map[int][]int{0: {1}, 1: {1, 1}, 4: {1, 1}}), checker.VerifyOptions{}, []string{}},
		{"lost acknowledged write", []checker.Op{w(0, exec, 1, checker.OK)}, rows(nil), checker.VerifyOptions{}, []string{"lost#0"}},
		{"lost await-timeout write", []checker.Op{w(0, tx, 2, checker.AwaitTimeout)}, rows(nil), checker.VerifyOptions{}, []string{"lost#0"}},
		{"lost committed-error write", []checker.Op{w(0, call, 2, checker.Committed)}, rows(nil), checker.VerifyOptions{}, []string{"lost#0"}},
		{"duplicate", []checker.Op{w(0, exec, 1, checker.OK)}, rows(map[int][]int{0: {2}}), checker.VerifyOptions{}, []string{"duplicate#0"}},
		{"unknown applied twice", []checker.Op{w(0, exec, 1, checker.Unknown)}, rows(map[int][]int{0: {2}}), checker.VerifyOptions{}, []string{"duplicate#0"}},
		{"half a transaction", []checker.Op{w(0, tx, 2, checker.Unknown)}, rows(map[int][]int{0: {1, 0}}), checker.VerifyOptions{}, []string{"partial#0"}},
		{"not committed but present", []checker.Op{w(0, exec, 1, checker.NoPrimary)}, rows(map[int][]int{0: {1}}), checker.VerifyOptions{},
			[]string{"not-committed-present#0"}},
		{"postgres error but present", []checker.Op{w(0, exec, 1, checker.PgError)}, rows(map[int][]int{0: {1}}), checker.VerifyOptions{},
			[]string{"not-committed-present#0"}},
		{"undocumented error but present", []checker.Op{w(0, exec, 1, checker.Other)}, rows(map[int][]int{0: {1}}), checker.VerifyOptions{},
			[]string{"not-committed-present#0"}},
		{"the driver's own error on a pass-through target may have committed", []checker.Op{passThrough(w(0, exec, 1, checker.Other))},
			rows(map[int][]int{0: {1}}), checker.VerifyOptions{}, []string{}},
		{"transaction failed before commit but present", []checker.Op{beforeCommit(w(0, tx, 2, checker.Unknown))},
			rows(map[int][]int{0: {1, 1}}), checker.VerifyOptions{}, []string{"not-committed-present#0"}},
		{"stale read", []checker.Op{w(0, exec, 1, checker.OK), read(1, []int{0}, []int{})}, rows(map[int][]int{0: {1}}),
			checker.VerifyOptions{}, []string{"stale-read#1"}},
		{"stale read of an earlier await-timeout write", []checker.Op{w(0, tx, 2, checker.AwaitTimeout), w(1, exec, 1, checker.OK),
			read(2, []int{0, 1}, []int{1})}, rows(map[int][]int{0: {1, 1}, 1: {1}}), checker.VerifyOptions{}, []string{"stale-read#2"}},
		{"await-timeout write not yet visible is fine", []checker.Op{w(0, tx, 2, checker.AwaitTimeout), read(1, []int{0}, []int{})},
			rows(map[int][]int{0: {1, 1}}), checker.VerifyOptions{}, []string{}},
		{"phantom read", []checker.Op{w(0, exec, 1, checker.PgError), read(1, []int{0}, []int{0})}, rows(nil),
			checker.VerifyOptions{}, []string{"phantom-read#1"}},
		{"partial read", []checker.Op{w(0, call, 2, checker.Unknown), read(1, []int{0}, []int{0})}, rows(map[int][]int{0: {1, 1}}),
			checker.VerifyOptions{}, []string{"partial-read#1"}},
		{"duplicate in a read", []checker.Op{w(0, exec, 1, checker.OK), read(1, []int{0}, []int{0, 0})}, rows(map[int][]int{0: {1}}),
			checker.VerifyOptions{}, []string{"duplicate#1"}},
		{"seen, then gone", []checker.Op{w(0, exec, 1, checker.Unknown), read(1, []int{0}, []int{0})}, rows(nil),
			checker.VerifyOptions{}, []string{"vanished#0"}},
		{"loss allowed", []checker.Op{w(0, exec, 1, checker.OK), w(1, exec, 1, checker.OK), read(2, []int{0, 1}, []int{1})},
			rows(map[int][]int{1: {1}}), checker.VerifyOptions{LossAllowed: func(op *checker.Op) bool { return op.Seq == 0 }}, []string{}},
		{"overran its deadline", []checker.Op{took(w(0, exec, 1, checker.Unknown), 3*time.Second)}, rows(nil),
			checker.VerifyOptions{Timeout: time.Second, Slack: time.Second}, []string{"overran-deadline#0"}},
		{"within deadline and slack", []checker.Op{took(w(0, exec, 1, checker.Unknown), 1900*time.Millisecond)}, rows(nil),
			checker.VerifyOptions{Timeout: time.Second, Slack: time.Second}, []string{}},
		{"row nobody wrote", []checker.Op{w(0, exec, 1, checker.OK)}, rows(map[int][]int{0: {1}, 7: {1}}), checker.VerifyOptions{},
			[]string{"unexpected-row#7"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vs := checker.Verify(tc.ops, tc.rows, tc.opt)
			assert.ElementsMatch(t, tc.want, kinds(vs), "%v", vs)
		})
	}
}

// A violation shows the client's history around it, marking the op.
func TestViolationCarriesHistory(t *testing.T) {
	var ops []checker.Op
	for i := range 30 {
		ops = append(ops, w(i, checker.OpExec, 1, checker.OK))
	}
	ops[20].Err = ""
	present := map[int][]int{}
	for i := range 30 {
		if i != 20 {
			present[i] = []int{1}
		}
	}
	vs := checker.Verify(ops, rows(present), checker.VerifyOptions{Depth: 5})
	require.Len(t, vs, 1)
	v := vs[0]
	assert.Equal(t, checker.Lost, v.Kind)
	var seqs []int
	for _, op := range v.History {
		seqs = append(seqs, op.Seq)
	}
	assert.Equal(t, []int{15, 16, 17, 18, 19, 20, 21, 22}, seqs)
	s := v.String()
	assert.Contains(t, s, "=> [")
	assert.Contains(t, s, "client 0 #20 on lax (lax) exec")
	assert.Equal(t, 1, strings.Count(s, "=> "), "only the violating op is marked")
}

func TestClassify(t *testing.T) {
	pgErr := &pgconn.PgError{Code: "23505", Message: "duplicate key"}
	cases := []struct {
		err  error
		want checker.Outcome
	}{
		{nil, checker.OK},
		{&flypg.AwaitError{Err: context.DeadlineExceeded}, checker.AwaitTimeout},
		{fmt.Errorf("wrapped: %w", &flypg.AwaitError{Err: flypg.ErrLocalUnavailable}), checker.AwaitTimeout},
		{&flypg.CommittedError{Err: errors.New("eof")}, checker.Committed},
		{&flypg.SessionStateError{What: "session advisory lock", Committed: true}, checker.Committed},
		{&flypg.SessionStateError{What: "session advisory lock"}, checker.SessionState},
		{fmt.Errorf("%w: link lost", flypg.ErrUnknownOutcome), checker.Unknown},
		{fmt.Errorf("%w: %w", flypg.ErrTxGone, flypg.ErrNoPrimary), checker.TxGone},
		{fmt.Errorf("%w: nobody", flypg.ErrNoPrimary), checker.NoPrimary},
		{pgErr, checker.PgError},
		{pgx.ErrTxCommitRollback, checker.PgError},
		{&flypg.ProcError{Proc: "p", Message: "boom"}, checker.ProcError},
		{context.DeadlineExceeded, checker.Context},
		{fmt.Errorf("x: %w", context.Canceled), checker.Context},
		{sql.ErrTxDone, checker.Context},
		{errors.New("flypg: on the primary: unexpected EOF"), checker.Other},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, checker.Classify(tc.err), "%v", tc.err)
	}
	for _, o := range checker.Outcomes() {
		var back checker.Outcome
		b, _ := o.MarshalText()
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, o, back)
	}
}
