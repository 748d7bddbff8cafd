package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of cairn's own child spans.
const tracerName = "github.com/cairnstore/cairn"

// StartChild starts a child of the span in ctx, but only when that span is
// recording. With tracing off (the none exporter) or an unsampled request it
// returns ctx unchanged and a non-recording span, without allocating: the
// hot paths (a cached GET) call it unconditionally. Set attributes only when
// span.IsRecording(), so that building them costs nothing otherwise.
func StartChild(ctx context.Context, name string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return parent.TracerProvider().Tracer(tracerName).Start(ctx, name)
}
