package main

import (
	"encoding/base64"
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
	assert.Equal(t, benchOptions{rtt: 50 * time.Millisecond, amsDelay: 250 * time.Millisecond, scale: 1}, o, "defaults")

	o, err = parseBenchFlags([]string{"--rtt", "120ms", "--out", "docs/benchmarks.md", "-scale=0.1", "--ams-delay", "1s"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, benchOptions{rtt: 120 * time.Millisecond, amsDelay: time.Second, out: "docs/benchmarks.md", scale: 0.1}, o)

	for _, args := range [][]string{{"--rtt", "-1ms"}, {"--scale", "0"}, {"--scale", "NaN"}, {"--ams-delay", "0"}, {"extra"}, {"--nope"}} {
		_, err := parseBenchFlags(args, io.Discard)
		var ue usageError
		assert.ErrorAs(t, err, &ue, "%q: exit status 2", args)
	}

	var help strings.Builder
	_, err = parseBenchFlags([]string{"--help"}, &help)
	assert.ErrorIs(t, err, flag.ErrHelp)
	for _, f := range []string{"-rtt", "-out", "-scale", "-ams-delay"} {
		assert.Contains(t, help.String(), f, "--help documents every flag")
	}
}

func TestParseDemoFlags(t *testing.T) {
	o, err := parseDemoFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, labOptions{rtt: 60 * time.Millisecond, amsDelay: 500 * time.Millisecond}, o, "defaults")
	o, err = parseDemoFlags([]string{"--rtt=10ms", "--ams-delay=2s"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, labOptions{rtt: 10 * time.Millisecond, amsDelay: 2 * time.Second}, o)
	for _, args := range [][]string{{"--rtt", "-1ms"}, {"--ams-delay", "-1s"}, {"x"}} {
		_, err := parseDemoFlags(args, io.Discard)
		var ue usageError
		assert.ErrorAs(t, err, &ue, "%q", args)
	}
}

func TestParseSoakFlags(t *testing.T) {
	o, err := parseSoakFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, soakOptions{clients: 1000, duration: time.Minute, rtt: 20 * time.Millisecond, conns: 64, direct: true}, o, "defaults")
	o, err = parseSoakFlags([]string{"--clients", "10", "--duration", "5s", "--direct=false", "--conns", "4", "--rtt", "5ms"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, soakOptions{clients: 10, duration: 5 * time.Second, rtt: 5 * time.Millisecond, conns: 4}, o)
	for _, args := range [][]string{{"--clients", "0"}, {"--duration", "0s"}, {"--conns", "-1"}, {"--rtt", "0"}, {"x"}} {
		_, err := parseSoakFlags(args, io.Discard)
		var ue usageError
		assert.ErrorAs(t, err, &ue, "%q", args)
	}
	var help strings.Builder
	_, err = parseSoakFlags([]string{"-h"}, &help)
	assert.ErrorIs(t, err, flag.ErrHelp)
	for _, f := range []string{"-clients", "-duration", "-rtt", "-conns", "-direct"} {
		assert.Contains(t, help.String(), f)
	}

	cfg := soakConfig(o)
	assert.Equal(t, 10, cfg.Clients)
	assert.Equal(t, 5*time.Second, cfg.Duration)
	assert.Equal(t, 5*time.Millisecond, cfg.RTT)
	assert.Equal(t, 4, cfg.MaxConns)
	assert.True(t, cfg.SkipDirect, "--direct=false")
	assert.True(t, cfg.KeepSignals, "main handles ^C")
	assert.NotNil(t, cfg.Logf)
	assert.False(t, soakConfig(soakOptions{direct: true}).SkipDirect)
}

func TestSecret(t *testing.T) {
	var a, b strings.Builder
	require.NoError(t, runSecret(nil, &a, io.Discard))
	require.NoError(t, runSecret(nil, &b, io.Discard))
	for _, out := range []string{a.String(), b.String()} {
		require.True(t, strings.HasSuffix(out, "\n"), "one line")
		s := strings.TrimSuffix(out, "\n")
		raw, err := base64.StdEncoding.DecodeString(s)
		require.NoError(t, err, "base64, as openssl rand -base64 32 prints")
		assert.Len(t, raw, 32)
		assert.Len(t, s, 44)
		assert.NoError(t, validSecret(s), "flypg accepts it")
	}
	assert.NotEqual(t, a.String(), b.String(), "a fresh secret each time")

	var ue usageError
	assert.ErrorAs(t, runSecret([]string{"extra"}, io.Discard, io.Discard), &ue)
	assert.Error(t, validSecret("flypg-lab"), "the lab's old secret is refused now")
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
		Sections: []section{{Title: "1. Insert", Intro: "intro", Table: table{Header: []string{"a"}, Rows: [][]string{{"1"}}},
			Chart: &chart{File: "insert.svg", Title: "Insert [ms]"}, Notes: []string{"note"}}},
	}
	md := r.markdown()
	for _, want := range []string{
		"# flypg benchmarks\n\nNumbers depend on the machine.\n\n",
		"| Go  | go1.26 |",
		"## Goals\n",
		"| ratio | ≤ 1.05 | 1.20     | **no** |\n\n- finding\n\n## 1.",
		"## 1. Insert\n\nintro\n\n| a   |\n|-----|\n| 1   |\n\n![Insert [ms\\]](img/insert.svg)\n\n- note\n",
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
	assert.Equal(t, "0.000 ms", msec(-200*time.Nanosecond), "no negative zero")
	assert.Equal(t, "-0.003 ms", msec(-3*time.Microsecond))
	assert.Equal(t, "+0.021 ms", signedMsec(21*time.Microsecond))
	assert.Equal(t, "-1.5 ms", signedMsec(-1500*time.Microsecond))
	assert.Equal(t, "0.000 ms", signedMsec(-100*time.Nanosecond))
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
