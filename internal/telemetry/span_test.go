package telemetry

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestStartChild(t *testing.T) {
	// Without a recording parent: nothing is started, ctx is unchanged, and
	// nothing is allocated.
	ctx := context.Background()
	got, span := StartChild(ctx, "x")
	if got != ctx || span.IsRecording() {
		t.Fatalf("StartChild without a parent: new ctx %v, recording %v", got != ctx, span.IsRecording())
	}
	if n := testing.AllocsPerRun(100, func() { _, s := StartChild(ctx, "x"); s.End() }); n != 0 {
		t.Fatalf("StartChild without a recording parent allocates %v times", n)
	}
	// With one: a child in the same trace, exported on End.
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	pctx, parent := tp.Tracer("t").Start(ctx, "parent")
	cctx, child := StartChild(pctx, "child")
	child.End()
	parent.End()
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[0].Name != "child" || spans[0].Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("spans = %v", spans)
	}
	if trace.SpanFromContext(cctx).SpanContext().SpanID() != child.SpanContext().SpanID() {
		t.Fatal("the child's context does not carry the child span")
	}
}

// BenchmarkStartChildNotRecording is what the tracing instrumentation costs
// a request when tracing is off (the none exporter): one per child span.
//
//	go test -run '^$' -bench StartChild ./internal/telemetry/
func BenchmarkStartChildNotRecording(b *testing.B) {
	// A request context is a few layers deep; the span lookup walks them.
	ctx := context.WithValue(context.WithValue(context.Background(), struct{ a int }{}, 1), struct{ b int }{}, 2)
	b.ReportAllocs()
	for b.Loop() {
		_, s := StartChild(ctx, "cache.get")
		if s.IsRecording() {
			b.Fatal("recording")
		}
		s.End()
	}
}
