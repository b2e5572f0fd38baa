package lsn

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHeapAgainstSortedSlice drives random pushes, pops and removals and
// checks the heap against a plain sorted slice.
func TestHeapAgainstSortedSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h waiterHeap
	var live []*waiter
	for range 20000 {
		switch op := rng.IntN(3); {
		case op == 0 || len(live) == 0:
			w := &waiter{target: LSN(rng.IntN(500))}
			h.push(w)
			live = append(live, w)
		case op == 1:
			w := h.pop()
			require.Equal(t, -1, w.index)
			minT := slices.MinFunc(live, func(a, b *waiter) int { return int(a.target) - int(b.target) }).target
			require.Equal(t, minT, w.target, "pop returns a smallest target")
			live = slices.DeleteFunc(live, func(x *waiter) bool { return x == w })
		default:
			w := live[rng.IntN(len(live))]
			require.Same(t, w, h[w.index], "index tracks position")
			h.remove(w.index)
			live = slices.DeleteFunc(live, func(x *waiter) bool { return x == w })
		}
		require.Len(t, h, len(live))
		for i := 1; i < len(h); i++ {
			require.LessOrEqual(t, h[(i-1)/2].target, h[i].target, "heap order")
			require.Equal(t, i, h[i].index)
		}
	}
}

func TestRecordEnd(t *testing.T) {
	const block, segment = 8192, 1 << 20
	for _, tc := range []struct{ in, want LSN }{
		{0x1_00002018, 0x1_00002000}, // short page header
		{0x1_00100028, 0x1_00100000}, // long header, first page of a segment
		{0x1_00002028, 0x1_00002028}, // offset 40 on an ordinary page: a real record end
		{0x1_00100018, 0x1_00100000}, // inside a long header: not a record end either
		{0x1_00002000, 0x1_00002000}, // already a boundary
		{0x1_00002019, 0x1_00002019}, // anything else stays
		{0x1_00002017, 0x1_00002017},
	} {
		assert.Equal(t, tc.want, recordEnd(tc.in, block, segment), "%s", tc.in)
	}
	assert.Equal(t, LSN(0x2018), recordEnd(0x2018, 0, 0), "unknown sizes: unchanged")
}

// The tracker's choice of how to wait, for every combination that matters:
// WAIT FOR LSN where the server has it (19+) and it works, else the signal
// while it streams, else polls; nothing to wait for on a primary.
func TestChooseMode(t *testing.T) {
	standby := capabilities{connected: true, recovery: recoveryYes, serverVersion: 150018}
	with := func(f func(*capabilities)) capabilities { c := standby; f(&c); return c }
	for _, tc := range []struct {
		name       string
		caps       capabilities
		want       mode
		wantSignal bool
	}{
		{"not connected", capabilities{}, modeUnknown, false},
		{"primary", with(func(c *capabilities) { c.recovery = recoveryNo }), modePrimary, false},
		{"primary on 19", with(func(c *capabilities) { c.recovery, c.serverVersion = recoveryNo, 190000 }), modePrimary, false},
		{"15, signal not yet streaming", standby, modePoll, true},
		{"15, signal streaming", with(func(c *capabilities) { c.signalStreaming = true }), modeSignal, true},
		{"15, signal disabled", with(func(c *capabilities) { c.disableSignal, c.signalStreaming = true, true }), modePoll, false},
		{"18", with(func(c *capabilities) { c.serverVersion, c.signalStreaming = 180003, true }), modeSignal, true},
		{"19", with(func(c *capabilities) { c.serverVersion = 190000 }), modeWaitFor, false},
		{"19, signal streaming", with(func(c *capabilities) { c.serverVersion, c.signalStreaming = 190002, true }), modeWaitFor, false},
		{"19, WAIT FOR disabled", with(func(c *capabilities) { c.serverVersion, c.disableWaitFor = 190000, true }), modePoll, true},
		{"19, WAIT FOR failed", with(func(c *capabilities) { c.serverVersion, c.waitForBroken, c.signalStreaming = 190000, true, true }), modeSignal, true},
		{"20", with(func(c *capabilities) { c.serverVersion = 200000 }), modeWaitFor, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, chooseMode(tc.caps))
			assert.Equal(t, tc.wantSignal, tc.caps.wantSignal())
		})
	}
}

func TestWaitForStatement(t *testing.T) {
	assert.Equal(t, "WAIT FOR LSN '16/B374D848' WITH (TIMEOUT '1000ms', NO_THROW)", waitForSQL(0x16_B374D848, time.Second))
	assert.Equal(t, "WAIT FOR LSN '0/0' WITH (TIMEOUT '1ms', NO_THROW)", waitForSQL(0, 0), "never 0 ms, which would wait forever")

	for _, tc := range []struct {
		in   string
		want waitForStatus
	}{{"success", waitForSuccess}, {"timeout", waitForTimeout}, {"not in recovery", waitForNotRecovery}} {
		got, err := parseWaitForStatus(tc.in)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got)
	}
	_, err := parseWaitForStatus("SUCCESS")
	assert.Error(t, err)
	_, err = waitForResult(nil)
	assert.Error(t, err, "no result")
}
