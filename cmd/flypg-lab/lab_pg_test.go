package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLab runs the lab on real servers — three regions, in-process nodes —
// and checks what the bench and the soak rely on: the baselines pay the
// round trips they are said to, flypg's pipelined transaction pays one, a
// causal token makes a lagging region's read current.
func TestLab(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := startLab(ctx, labOptions{rtt: 10 * time.Millisecond, amsDelay: 300 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, l.Close()) })
	obs := &awaitObserver{}
	l.observer = obs
	require.NoError(t, l.startNodes(ctx))
	devNull, err := os.Open(os.DevNull)
	require.NoError(t, err)
	t.Cleanup(func() { devNull.Close() })
	b := &bench{l: l, scale: 0.05, prog: newProgressLine(devNull), obs: obs}
	require.NoError(t, b.setup(ctx))

	t.Run("direct baselines", func(t *testing.T) {
		stmts := b.webStatements(0, "x")
		trips := b.proxyTrips(proxyDirect)
		cases := []struct {
			name string
			run  func() error
			want int64
		}{
			{"a read", func() error { return readOn(l.direct)(ctx, 0) }, 1},
			{"BEGIN with the first statement", func() error { return directTx(ctx, l.direct, beginWithFirst, stmts) }, int64(len(stmts) + 1)},
			{"one batch", func() error { return directTx(ctx, l.direct, oneBatch, stmts) }, 1},
		}
		for _, tc := range cases {
			require.NoError(t, tc.run(), "%s (warm-up: pgx prepares the statements)", tc.name)
		}
		// Idle for over a second: pgx's stdlib would ping the connection
		// before reusing it, a round trip openBaseline turns off.
		require.NoError(t, sleep(ctx, 1100*time.Millisecond))
		for _, tc := range cases {
			n0 := trips()
			require.NoError(t, tc.run(), tc.name)
			assert.Equal(t, tc.want, trips()-n0, "%s: WAN round trips", tc.name)
		}
		// A failing statement rolls the transaction back and leaves the
		// connection usable.
		bad := append(append([]stmt{}, stmts...), stmt{"INSERT INTO bench_orders (kv_id) VALUES ($1)", []any{1}})
		for _, mode := range []txMode{beginWithFirst, oneBatch} {
			assert.Error(t, directTx(ctx, l.direct, mode, bad), "NOT NULL violation")
		}
		var orders int
		require.NoError(t, l.primary.QueryRowContext(ctx, "SELECT count(*) FROM bench_orders").Scan(&orders))
		assert.Equal(t, 4, orders, "the four good transactions committed, the failed ones did not")
	})

	t.Run("web request", func(t *testing.T) {
		laxTrips, directTrips := nodeTrips(l.lax), b.proxyTrips(proxyDirect)
		const n = 3
		r, err := b.measure(ctx,
			variant{name: "flypg pipelined", n: n, op: b.webOnFlypg(l.laxDB, true), trips: laxTrips},
			variant{name: "flypg", n: n, op: b.webOnFlypg(l.laxDB, false), trips: laxTrips},
			variant{name: "direct", n: n, op: b.webDirect(l.direct, beginWithFirst), trips: directTrips},
			variant{name: "naive split", n: n, op: b.webDirect(l.replica, beginWithFirst), trips: directTrips},
		)
		require.NoError(t, err)
		for k, want := range []float64{1, 4, 14, 4} {
			assert.Equal(t, want, r[k].meanTrips(), "variant %d: WAN round trips per request", k)
		}
		assert.Len(t, r[0].awaits, n, "each pipelined Commit waited for replay once")
	})

	t.Run("tokens", func(t *testing.T) {
		sec, goals, err := b.tokens(ctx)
		require.NoError(t, err)
		require.Len(t, goals, 1)
		assert.True(t, goals[0].Met, "no stale read with a token: %s", goals[0].Measured)
		last := sec.Table.Rows[len(sec.Table.Rows)-2]
		assert.Equal(t, fmt.Sprintf("%d/%d", b.n(20), b.n(20)), last[len(last)-1],
			"without the token every read right after the write is stale (ams replays %v late)", l.amsDelay)
	})
}
