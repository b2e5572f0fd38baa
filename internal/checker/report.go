package checker

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flypg/flypg/internal/hist"
)

// Report is what a run did and what the verification found.
type Report struct {
	Run     string        `json:"run"`
	Clients int           `json:"clients"`
	DBs     []string      `json:"dbs"`
	Started time.Time     `json:"started"`
	Elapsed time.Duration `json:"elapsed"`

	Ops    int `json:"ops"`
	Writes int `json:"writes"`
	Reads  int `json:"reads"`
	// Outcomes totals the writes by outcome, ReadOutcomes the reads;
	// ByKind both, by operation kind.
	Outcomes     map[Outcome]int            `json:"outcomes"`
	ReadOutcomes map[Outcome]int            `json:"read_outcomes"`
	ByKind       map[OpKind]map[Outcome]int `json:"by_kind"`
	// What became of the writes whose outcome was not known to the caller
	// (Expect Maybe: ErrUnknownOutcome, a context error, a procedure's
	// error): found applied (once) or not at all.
	MaybeApplied int `json:"maybe_applied,omitempty"`
	MaybeAbsent  int `json:"maybe_absent,omitempty"`
	// ContextApplied counts the writes that returned a bare context error
	// and were applied all the same.
	ContextApplied int `json:"context_applied,omitempty"`
	// AllowedLoss counts writes missing that Config.LossAllowed excused.
	AllowedLoss int `json:"allowed_loss,omitempty"`

	// Violations are the broken promises, each with its history.
	Violations []Violation `json:"violations,omitempty"`

	// Latency of the operations that succeeded, by kind, and of all
	// successful writes and reads.
	Latency      map[OpKind]Quantiles `json:"latency"`
	WriteLatency Quantiles            `json:"write_latency"`
	ReadLatency  Quantiles            `json:"read_latency"`
	// Throughput is successful operations per second, WriteThroughput
	// successful writes per second.
	Throughput      float64 `json:"throughput"`
	WriteThroughput float64 `json:"write_throughput"`

	// Samples are the process's memory and goroutines over the run, every
	// Config.SampleEvery while the clients ran; Before was taken before
	// they started, After once they had all stopped.
	Samples []Sample `json:"samples"`
	Before  Sample   `json:"before"`
	After   Sample   `json:"after"`
	// Failures are the operations that returned an error, in the order
	// they ended (at most Config.MaxFailures).
	Failures []Op `json:"failures,omitempty"`

	ops  []Op
	rows Rows
}

// RowsOf is how many of op's rows the primary held at the end (counting
// duplicates).
func (r *Report) RowsOf(op *Op) int {
	n, _ := count(r.rows, op)
	return n
}

// Quantiles are latency figures of one kind of operation (from a log-scale
// histogram: they overstate by up to 25%).
type Quantiles struct {
	Count uint64        `json:"count"`
	P50   time.Duration `json:"p50,omitempty"`
	P99   time.Duration `json:"p99,omitempty"`
	Mean  time.Duration `json:"mean,omitempty"`
}

type latencies struct {
	byKind [OpReadTx + 1]hist.Histogram
}

func (l *Load) recordLatency(k OpKind, d time.Duration) {
	l.lat.byKind[k].Record(d)
	if k.Write() {
		l.writeLat.Record(d)
	} else {
		l.readLat.Record(d)
	}
}

func quantiles(h *hist.Histogram) Quantiles {
	q := h.Quantiles(0.5, 0.99)
	out := Quantiles{Count: h.Count(), P50: q[0], P99: q[1]}
	if out.Count > 0 {
		out.Mean = h.Sum() / time.Duration(out.Count)
	}
	return out
}

// Err is nil for a run without violations, else an error listing them with
// their histories.
func (r *Report) Err() error {
	if len(r.Violations) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "checker: %d violation(s) in run %s:\n", len(r.Violations), r.Run)
	for i, v := range r.Violations {
		if i == 20 {
			fmt.Fprintf(&b, "… and %d more\n", len(r.Violations)-i)
			break
		}
		b.WriteString(v.String())
	}
	return errors.New(b.String())
}

// History is the run's whole history, client by client, in Seq order (reads'
// keys only for each client's last HistoryDepth operations).
func (r *Report) History() []Op { return r.ops }

// Summary is one line of totals.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ops (%d writes, %d reads) by %d clients in %v, %.0f ok ops/s; writes:", r.Ops, r.Writes, r.Reads,
		r.Clients, r.Elapsed.Round(time.Millisecond), r.Throughput)
	b.WriteString(formatOutcomes(r.Outcomes))
	b.WriteString("; reads:")
	b.WriteString(formatOutcomes(r.ReadOutcomes))
	fmt.Fprintf(&b, "; write p50 %v p99 %v, read p50 %v p99 %v", r.WriteLatency.P50, r.WriteLatency.P99,
		r.ReadLatency.P50, r.ReadLatency.P99)
	if r.MaybeApplied+r.MaybeAbsent > 0 {
		fmt.Fprintf(&b, "; outcome unknown: %d applied, %d not", r.MaybeApplied, r.MaybeAbsent)
		if r.ContextApplied > 0 {
			fmt.Fprintf(&b, " (%d applied of those with a bare context error)", r.ContextApplied)
		}
	}
	if r.AllowedLoss > 0 {
		fmt.Fprintf(&b, "; %d allowed losses", r.AllowedLoss)
	}
	fmt.Fprintf(&b, "; %d violations", len(r.Violations))
	return b.String()
}

func formatOutcomes(m map[Outcome]int) string {
	var b strings.Builder
	for _, o := range Outcomes() {
		if n := m[o]; n > 0 {
			fmt.Fprintf(&b, " %s=%d", o, n)
		}
	}
	if b.Len() == 0 {
		return " none"
	}
	return b.String()
}

// Curve is the memory and goroutine samples at the start (after warm-up:
// the first sample past a tenth of the run), middle and end of the run.
func (r *Report) Curve() (start, middle, end Sample) {
	if len(r.Samples) == 0 {
		return
	}
	at := func(d time.Duration) Sample {
		i := sort.Search(len(r.Samples), func(i int) bool { return r.Samples[i].At >= d })
		return r.Samples[min(i, len(r.Samples)-1)]
	}
	return at(r.Elapsed / 10), at(r.Elapsed / 2), r.Samples[len(r.Samples)-1]
}

// FirstOK is the end of the first write acknowledged with nil that began at
// or after from (run time base), among the ops match accepts (all when
// nil), and whether there was one.
func (r *Report) FirstOK(from time.Duration, match func(*Op) bool) (time.Duration, bool) {
	return r.first(from, func(op *Op) bool { return op.Outcome == OK && (match == nil || match(op)) })
}

// FirstCommitted is FirstOK for writes acknowledged as committed (nil,
// *AwaitError, *CommittedError).
func (r *Report) FirstCommitted(from time.Duration, match func(*Op) bool) (time.Duration, bool) {
	return r.first(from, func(op *Op) bool { return op.Expect() == Present && (match == nil || match(op)) })
}

// First is the earliest end among the writes match accepts, and whether
// there was one: e.g. the first write that committed after a promotion, however
// long before it the write began.
func (r *Report) First(match func(*Op) bool) (time.Duration, bool) {
	return r.first(-1<<62, match)
}

func (r *Report) first(from time.Duration, match func(*Op) bool) (time.Duration, bool) {
	best, ok := time.Duration(0), false
	for i := range r.ops {
		op := &r.ops[i]
		if !op.Kind.Write() || op.Start < from || !match(op) {
			continue
		}
		if !ok || op.End < best {
			best, ok = op.End, true
		}
	}
	return best, ok
}

// Filter returns the ops match accepts.
func (r *Report) Filter(match func(*Op) bool) []Op {
	var out []Op
	for i := range r.ops {
		if match(&r.ops[i]) {
			out = append(out, r.ops[i])
		}
	}
	return out
}

// report builds the Report from the clients' histories and the primary's
// rows.
func (l *Load) report(elapsed time.Duration, rows Rows) *Report {
	cfg := &l.cfg
	r := &Report{Run: cfg.RunID, Clients: cfg.Clients, Started: l.started, Elapsed: elapsed,
		Outcomes: map[Outcome]int{}, ReadOutcomes: map[Outcome]int{}, ByKind: map[OpKind]map[Outcome]int{},
		Latency: map[OpKind]Quantiles{}, rows: rows}
	for _, t := range cfg.DBs {
		r.DBs = append(r.DBs, t.Name)
	}
	byClient := map[int]Rows{}
	for k, n := range rows {
		m := byClient[k.Client]
		if m == nil {
			m = Rows{}
			byClient[k.Client] = m
		}
		m[k] = n
	}
	all := &l.lat
	opt := VerifyOptions{Timeout: cfg.OpTimeout, Slack: cfg.DeadlineSlack, LossAllowed: cfg.LossAllowed,
		Depth: cfg.HistoryDepth, SkipReads: true}
	for _, c := range l.clients {
		ops := c.ops()
		seen := map[OpID]bool{}
		for i, rc := range c.recs {
			if rc.flags&flagSeen != 0 {
				seen[OpID{c.id, i}] = true
			}
		}
		opt.Seen = seen
		r.Violations = append(r.Violations, c.violations...)
		r.Violations = append(r.Violations, Verify(ops, byClient[c.id], opt)...)
		delete(byClient, c.id)
		for i := range ops {
			op := &ops[i]
			r.Ops++
			if r.ByKind[op.Kind] == nil {
				r.ByKind[op.Kind] = map[Outcome]int{}
			}
			r.ByKind[op.Kind][op.Outcome]++
			if op.Kind.Write() {
				r.Writes++
				r.Outcomes[op.Outcome]++
				if op.Expect() == Maybe {
					n, _ := count(rows, op)
					if n > 0 {
						r.MaybeApplied++
						if op.Outcome == Context {
							r.ContextApplied++
						}
					} else {
						r.MaybeAbsent++
					}
				}
				if op.Expect() == Present && cfg.LossAllowed != nil && cfg.LossAllowed(op) {
					if n, _ := count(rows, op); n == 0 {
						r.AllowedLoss++
					}
				}
			} else {
				r.Reads++
				r.ReadOutcomes[op.Outcome]++
			}
			if op.Outcome != OK && len(r.Failures) < cfg.MaxFailures {
				r.Failures = append(r.Failures, *op)
			}
		}
		r.ops = append(r.ops, ops...)
	}
	for client := range byClient {
		if client >= 0 {
			for k, n := range byClient[client] {
				r.Violations = append(r.Violations, Violation{Kind: Unexpected, Op: Op{Client: k.Client, Seq: k.Seq},
					Detail: fmt.Sprintf("row %+v (%d×) belongs to no client of this run", k, n)})
			}
		}
	}
	for k := range all.byKind {
		if all.byKind[k].Count() > 0 {
			r.Latency[OpKind(k)] = quantiles(&all.byKind[k])
		}
	}
	r.WriteLatency, r.ReadLatency = quantiles(&l.writeLat), quantiles(&l.readLat)
	if s := elapsed.Seconds(); s > 0 {
		r.Throughput = float64(l.writeLat.Count()+l.readLat.Count()) / s
		r.WriteThroughput = float64(l.writeLat.Count()) / s
	}
	sort.SliceStable(r.Failures, func(i, j int) bool { return r.Failures[i].End < r.Failures[j].End })
	l.samples.Lock()
	r.Samples = append([]Sample(nil), l.samples.list...)
	l.samples.Unlock()
	return r
}
