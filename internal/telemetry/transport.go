package telemetry

import (
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// InjectTransport returns a RoundTripper that adds the W3C traceparent (and
// tracestate) of the request context's span to each outgoing request, then
// calls rt (http.DefaultTransport if nil). A request whose context holds no
// valid span context goes through untouched and unallocated. The request is
// cloned before its headers change, as the RoundTripper contract asks.
//
// It starts no client span: the Go client's caller owns the span that the
// call belongs to.
func InjectTransport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return injectTransport{rt}
}

type injectTransport struct{ next http.RoundTripper }

func (t injectTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !trace.SpanContextFromContext(r.Context()).IsValid() {
		return t.next.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	propagator.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	return t.next.RoundTrip(r)
}
