package faults

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/checker"
)

// The load: many clients in the replica region (1,000 for 60 s under
// -faults.long, as `flypg-lab soak` runs it), verified by the checker,
// next to the same load sent direct with pgx across the same WAN. No
// violations, goroutines flat after warm-up; latency, throughput and the
// memory curve are reported (measurements, not assertions).
func TestLoad(t *testing.T) {
	ctx := t.Context()
	rep, err := checker.Soak(ctx, checker.SoakConfig{
		Clients:        pick(200, 1000),
		Duration:       pick(10*time.Second, 60*time.Second),
		DirectDuration: pick(5*time.Second, 60*time.Second),
		RTT:            20 * time.Millisecond,
		Logf:           t.Logf,
	})
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, rep.WriteMarkdown(&b))
	t.Log("\n" + b.String())
	require.NoError(t, rep.Err())
	f := rep.Flypg
	assert.Equal(t, f.Writes, f.Outcomes[checker.OK]+f.Outcomes[checker.Context],
		"every write acknowledged (or, queued for a pool connection past its deadline, a context error): %s", f.Summary())
	assert.Zero(t, f.Outcomes[checker.Other], "no undocumented errors")
	_, mid, end := f.Curve()
	t.Logf("goroutines: before %d, middle %d, end %d, after %d", f.Before.Goroutines, mid.Goroutines, end.Goroutines, f.After.Goroutines)
}
