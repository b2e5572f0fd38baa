package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// report is the benchmark suite's result, rendered as markdown.
type report struct {
	Title    string
	Preamble []string // paragraphs
	Machine  [][2]string
	Goals    []goal
	Findings []string // what the goals do not cover, under them
	Sections []section
}

// goal is one of the targets and how the run fared.
type goal struct {
	What, Target, Measured string
	Met                    bool
}

type section struct {
	Title string
	Intro string
	Table table
	Chart *chart // embedded after the table, from chartDir
	Notes []string
}

type table struct {
	Header []string
	Rows   [][]string
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	for _, p := range r.Preamble {
		fmt.Fprintf(&b, "%s\n\n", p)
	}
	if len(r.Machine) > 0 {
		t := table{Header: []string{"", ""}}
		for _, kv := range r.Machine {
			t.Rows = append(t.Rows, []string{kv[0], kv[1]})
		}
		b.WriteString(t.markdown())
		b.WriteString("\n")
	}
	if len(r.Goals) > 0 {
		b.WriteString("## Goals\n\n")
		t := table{Header: []string{"goal", "target", "measured", "met"}}
		for _, g := range r.Goals {
			t.Rows = append(t.Rows, []string{g.What, g.Target, g.Measured, metText(g.Met)})
		}
		b.WriteString(t.markdown())
		b.WriteString("\n")
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "- %s\n", f)
	}
	if len(r.Findings) > 0 {
		b.WriteString("\n")
	}
	for _, s := range r.Sections {
		fmt.Fprintf(&b, "## %s\n\n", s.Title)
		if s.Intro != "" {
			fmt.Fprintf(&b, "%s\n\n", s.Intro)
		}
		if len(s.Table.Header) > 0 {
			b.WriteString(s.Table.markdown())
			b.WriteString("\n")
		}
		if s.Chart != nil {
			fmt.Fprintf(&b, "![%s](%s/%s)\n\n", strings.ReplaceAll(s.Chart.Title, "]", `\]`), chartDir, s.Chart.File)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		if len(s.Notes) > 0 {
			b.WriteString("\n")
		}
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

func metText(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// markdown renders a GitHub table. Columns are padded so the source reads
// as a table too; a cell's pipes are escaped.
func (t table) markdown() string {
	cols := len(t.Header)
	for _, r := range t.Rows {
		cols = max(cols, len(r))
	}
	cell := func(row []string, i int) string {
		if i >= len(row) {
			return ""
		}
		return strings.ReplaceAll(row[i], "|", `\|`)
	}
	width := make([]int, cols)
	for i := range cols {
		width[i] = 3
		for _, r := range append([][]string{t.Header}, t.Rows...) {
			width[i] = max(width[i], len([]rune(cell(r, i))))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		b.WriteString("|")
		for i := range cols {
			c := cell(row, i)
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		b.WriteString("\n")
	}
	line(t.Header)
	b.WriteString("|")
	for i := range cols {
		fmt.Fprintf(&b, "%s|", strings.Repeat("-", width[i]+2))
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		line(r)
	}
	return b.String()
}

// durations are latency samples.
type durations []time.Duration

// pct returns the q-quantile (0..1) by nearest rank; zero for no samples.
func (d durations) pct(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (d durations) p50() time.Duration { return d.pct(0.50) }
func (d durations) p99() time.Duration { return d.pct(0.99) }

func (d durations) sum() time.Duration {
	var t time.Duration
	for _, x := range d {
		t += x
	}
	return t
}

// msec formats a duration in milliseconds with a precision that suits its
// size: 0.213 ms, 12.4 ms, 812 ms.
func msec(d time.Duration) string {
	m := float64(d) / float64(time.Millisecond)
	if math.Abs(m) < 0.0005 {
		m = 0 // no "-0.000 ms"
	}
	switch a := math.Abs(m); {
	case a < 1:
		return fmt.Sprintf("%.3f ms", m)
	case a < 100:
		return fmt.Sprintf("%.1f ms", m)
	default:
		return fmt.Sprintf("%.0f ms", m)
	}
}

// signedMsec is msec of a difference, with its sign: "+0.021 ms",
// "-0.003 ms", "0.000 ms".
func signedMsec(d time.Duration) string {
	switch s := msec(d); {
	case s == msec(0), strings.HasPrefix(s, "-"):
		return s
	default:
		return "+" + s
	}
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func times(x float64) string { return fmt.Sprintf("%.2f×", x) }
