// Package flypgotel traces what flypg adds to a statement: a client span
// "flypg forward" for each request sent to a serving node (the WAN round
// trip to the primary) and an internal span "flypg await" for each wait for
// the local replica to replay a commit. It follows OpenTelemetry's database
// client semantic conventions (db.system.name, db.namespace,
// db.operation.batch.size, error.type, db.response.status_code) and adds
// flypg's own attributes (flypg.peer, flypg.lsn, …).
//
// It is a module of its own, so that users of flypg who do not trace never
// download OpenTelemetry:
//
//	node, err := flypg.Start(ctx, flypg.Config{Observer: flypgotel.New(flypgotel.Config{})})
//
// The statement spans themselves — one per Exec or Query, with the SQL text
// — are what an instrumented database/sql wrapper such as XSAM/otelsql
// records around flypg's driver; flypgotel's spans nest inside them.
package flypgotel

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/flypg/flypg"
)

// Config configures an Observer. The zero value uses the global tracer
// provider and records no SQL text.
type Config struct {
	// TracerProvider makes the tracer. Default otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// RecordSQL adds db.query.text (the statement, never its arguments) to
	// forward spans. Off by default: SQL text can hold secrets (ALTER ROLE
	// … PASSWORD), and otelsql records it already.
	RecordSQL bool
}

// Observer implements flypg.Observer with OpenTelemetry spans.
type Observer struct {
	tracer    trace.Tracer
	recordSQL bool
}

var _ flypg.Observer = (*Observer)(nil)

// New returns an Observer.
func New(cfg Config) *Observer {
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return &Observer{tracer: tp.Tracer("github.com/flypg/flypg/flypgotel"), recordSQL: cfg.RecordSQL}
}

// ForwardStart starts a client span for a forwarded request.
func (o *Observer) ForwardStart(ctx context.Context, f flypg.Forward) context.Context {
	attrs := []attribute.KeyValue{semconv.DBSystemNamePostgreSQL, attribute.String("flypg.method", f.Method), attribute.Bool("flypg.read", f.Read)}
	if f.Database != "" {
		attrs = append(attrs, semconv.DBNamespace(f.Database))
	}
	if f.Statements > 1 {
		attrs = append(attrs, semconv.DBOperationBatchSize(f.Statements))
	}
	if o.recordSQL && f.Query != "" {
		attrs = append(attrs, semconv.DBQueryText(f.Query))
	}
	ctx, _ = o.tracer.Start(ctx, "flypg forward", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx
}

// ForwardEnd ends the forward span.
func (o *Observer) ForwardEnd(ctx context.Context, node string, err error) {
	span := trace.SpanFromContext(ctx)
	if node != "" {
		span.SetAttributes(attribute.String("flypg.peer", node))
	}
	fail(span, err)
	span.End()
}

// AwaitStart starts an internal span for a wait for replay.
func (o *Observer) AwaitStart(ctx context.Context, a flypg.Await) context.Context {
	reason := "commit"
	if a.AfterLSN {
		reason = "after-lsn"
	}
	ctx, _ = o.tracer.Start(ctx, "flypg await", trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(
		semconv.DBSystemNamePostgreSQL, semconv.DBNamespace(a.Database),
		attribute.String("flypg.lsn", a.LSN.String()), attribute.String("flypg.await.reason", reason)))
	return ctx
}

// AwaitEnd ends the await span.
func (o *Observer) AwaitEnd(ctx context.Context, err error) {
	span := trace.SpanFromContext(ctx)
	fail(span, err)
	span.End()
}

func fail(span trace.Span, err error) {
	if err == nil {
		return
	}
	typ := "_OTHER"
	var pg *pgconn.PgError
	switch {
	case errors.As(err, &pg):
		typ = pg.Code
		span.SetAttributes(semconv.DBResponseStatusCode(pg.Code))
	case errors.Is(err, context.DeadlineExceeded):
		typ = "timeout"
	case errors.Is(err, context.Canceled):
		typ = "canceled"
	case errors.Is(err, flypg.ErrNoPrimary):
		typ = "no_primary"
	case errors.Is(err, flypg.ErrUnknownOutcome):
		typ = "unknown_outcome"
	}
	span.SetAttributes(semconv.ErrorTypeKey.String(typ))
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}
