package client

import (
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// WithTraceContext makes each request carry the W3C Trace Context
// (traceparent and tracestate headers) of the OpenTelemetry span in the
// call's context, so that the node's server span joins the caller's trace as
// its child. Calls whose context holds no valid span context are sent
// unchanged. Every attempt of a retried call carries the same parent: the
// client starts no span of its own (wrap the call in one to see attempts).
//
// The node continues an incoming trace only when it runs with a trace
// exporter other than none, and follows the parent's sampled flag.
//
// It is WithTransport with the propagating wrapper, so it composes with
// other wrappers in the order given.
func WithTraceContext() Option { return WithTransport(traceTransport) }

// traceContext is the W3C propagator, used whatever the otel globals say:
// the node reads only traceparent/tracestate.
var traceContext propagation.TraceContext

func traceTransport(next http.RoundTripper) http.RoundTripper { return &tracing{next} }

type tracing struct{ next http.RoundTripper }

func (t *tracing) RoundTrip(r *http.Request) (*http.Response, error) {
	if !trace.SpanContextFromContext(r.Context()).IsValid() {
		return t.next.RoundTrip(r)
	}
	r = r.Clone(r.Context()) // a RoundTripper must not modify the request
	traceContext.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	return t.next.RoundTrip(r)
}
