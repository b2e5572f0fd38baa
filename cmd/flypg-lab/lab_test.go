package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseBenchFlags(t *testing.T) {
	o, err := parseBenchFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, benchOptions{rtt: 50 * time.Millisecond, scale: 1}, o, "defaults")

	o, err = parseBenchFlags([]string{"--rtt", "120ms", "--out", "docs/benchmarks.md", "-scale=0.1"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, benchOptions{rtt: 120 * time.Millisecond, out: "docs/benchmarks.md", scale: 0.1}, o)

	for _, args := range [][]string{{"--rtt", "-1ms"}, {"--scale", "0"}, {"--scale", "NaN"}, {"extra"}, {"--nope"}} {
		_, err := parseBenchFlags(args, io.Discard)
		var ue usageError
		assert.ErrorAs(t, err, &ue, "%q: exit status 2", args)
	}

	var help strings.Builder
	_, err = parseBenchFlags([]string{"--help"}, &help)
	assert.ErrorIs(t, err, flag.ErrHelp)
	for _, f := range []string{"-rtt", "-out", "-scale"} {
		assert.Contains(t, help.String(), f, "--help documents every flag")
	}
}

func TestTableMarkdown(t *testing.T) {
	got := table{
		Header: []string{"variant", "p50"},
		Rows:   [][]string{{"flypg", "52.3 ms"}, {"a|b", "1.0 ms", "extra"}},
	}.markdown()
	want := "" +
		"| variant | p50     |       |\n" +
		"|---------|---------|-------|\n" +
		"| flypg   | 52.3 ms |       |\n" +
		"| a\\|b    | 1.0 ms  | extra |\n"
	assert.Equal(t, want, got)
}

func TestReportMarkdown(t *testing.T) {
	r := report{
		Title:    "flypg benchmarks",
		Preamble: []string{"Numbers depend on the machine."},
		Machine:  [][2]string{{"Go", "go1.26"}},
		Goals:    []goal{{What: "ratio", Target: "≤ 1.05", Measured: "1.20", Met: false}},
		Findings: []string{"finding"},
		Sections: []section{{Title: "1. Insert", Intro: "intro", Table: table{Header: []string{"a"}, Rows: [][]string{{"1"}}}, Notes: []string{"note"}}},
	}
	md := r.markdown()
	for _, want := range []string{
		"# flypg benchmarks\n\nNumbers depend on the machine.\n\n",
		"| Go  | go1.26 |",
		"## Goals\n",
		"| ratio | ≤ 1.05 | 1.20     | **no** |\n\n- finding\n\n## 1.",
		"## 1. Insert\n\nintro\n\n| a   |\n|-----|\n| 1   |\n\n- note\n",
	} {
		assert.Contains(t, md, want)
	}
	assert.True(t, strings.HasSuffix(md, "- note\n"), "one trailing newline")
}

func TestDurations(t *testing.T) {
	var d durations
	assert.Zero(t, d.p50(), "no samples")
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	assert.Equal(t, 50*time.Millisecond, d.p50())
	assert.Equal(t, 99*time.Millisecond, d.p99())
	assert.Equal(t, 100*time.Millisecond, d[0], "pct does not sort the samples in place")
	assert.Equal(t, 5050*time.Millisecond, d.sum())

	assert.Equal(t, "0.213 ms", msec(213*time.Microsecond))
	assert.Equal(t, "52.3 ms", msec(52300*time.Microsecond))
	assert.Equal(t, "812 ms", msec(812*time.Millisecond))
}

func TestCleanEnv(t *testing.T) {
	got := cleanEnv([]string{"PATH=/bin", "DATABASE_URL=x", "FLY_REGION=ams", "FLYPG_JOIN=y", "FLYPG_PG_BIN=/pg", "PORT=1", "HOME=/root"})
	assert.Equal(t, []string{"PATH=/bin", "FLYPG_PG_BIN=/pg", "HOME=/root"}, got)
}

func TestLogSink(t *testing.T) {
	var out strings.Builder
	s := &logSink{prefix: "lax | ", out: &out}
	fmt.Fprint(s, "one\ntw")
	fmt.Fprint(s, "o\nthree")
	assert.Equal(t, "lax | one\nlax | two\n", out.String(), "whole lines only")
	for i := range keepLines + 5 {
		fmt.Fprintf(s, "\n%d", i)
	}
	lines := strings.Split(s.tail(), "\n")
	assert.Len(t, lines, keepLines)
	assert.Equal(t, fmt.Sprintf("lax | %d", keepLines+3), lines[len(lines)-1])
}
