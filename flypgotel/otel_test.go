package flypgotel_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/flypgotel"
	"github.com/flypg/flypg/internal/pgcluster"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value
	}
	return out
}

// A forwarded write in a replica region makes a client span for the trip
// to the primary and an internal span for the await, nested in the
// caller's span, with the database client conventions' attributes.
func TestSpans(t *testing.T) {
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: 1})
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	secret := []byte(base64.StdEncoding.EncodeToString(raw))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := func(region, dsn string, join []string, obs flypg.Observer) *flypg.Node {
		n, err := flypg.Start(ctx, flypg.Config{Region: region, PrimaryRegion: "syd", DSN: dsn, NodeName: region,
			GossipAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", Join: join, Secret: secret, GossipProfile: "local",
			Logger: quiet, Observer: obs})
		require.NoError(t, err)
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	syd := start("syd", c.Primary.DSN(), nil, nil)
	lax := start("lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, flypgotel.New(flypgotel.Config{TracerProvider: tp, RecordSQL: true}))
	require.NoError(t, lax.WaitReady(ctx))
	require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE sp (id int)"))
	require.NoError(t, c.Sync(ctx))
	db := lax.OpenDB()
	defer db.Close()

	parent, span := tp.Tracer("test").Start(ctx, "handler")
	_, err := db.ExecContext(parent, "INSERT INTO sp VALUES (1)")
	require.NoError(t, err)
	span.End()
	_, err = db.ExecContext(ctx, "INSERT INTO sp VALUES ('x')")
	require.Error(t, err)

	var forward, await, failed sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch {
		case s.Name() == "flypg forward" && s.Parent().SpanID() == span.SpanContext().SpanID():
			forward = s
		case s.Name() == "flypg await" && s.Parent().SpanID() == span.SpanContext().SpanID():
			await = s
		case s.Name() == "flypg forward" && attrs(s)["db.query.text"].AsString() == "INSERT INTO sp VALUES ('x')":
			failed = s
		}
	}
	require.NotNil(t, forward, "a forward span in the caller's trace")
	require.NotNil(t, await, "an await span beside it")
	assert.Equal(t, trace.SpanKindClient, forward.SpanKind())
	a := attrs(forward)
	assert.Equal(t, "postgresql", a["db.system.name"].AsString())
	assert.Equal(t, "postgres", a["db.namespace"].AsString())
	assert.Equal(t, "syd", a["flypg.peer"].AsString())
	assert.Equal(t, "INSERT INTO sp VALUES (1)", a["db.query.text"].AsString())
	assert.NotEmpty(t, attrs(await)["flypg.lsn"].AsString())
	assert.False(t, await.EndTime().Before(forward.EndTime()), "the await follows the forward")
	require.NotNil(t, failed, "the failing statement is traced too")
}
