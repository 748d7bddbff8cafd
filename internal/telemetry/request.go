package telemetry

import (
	"context"

	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// RequestInfo is a request's tracing context: request id, tenant, operation,
// start time and the request's server span. It is the server's
// [reqctx.Info], not a copy of it: the server already fills one per request,
// embedded in its per-request exchange, so there is one struct and no extra
// allocation. The middleware reads Start (so a request costs one clock read
// of its own, at the end) and sets Span; code below the middleware finds the
// current span, parent of its child spans, in the context
// ([trace.SpanFromContext]).
type RequestInfo = reqctx.Info

// WithRequest returns a copy of ctx carrying info. The server calls it (as
// reqctx.With) once per request; code that serves requests outside the server
// (tests, the ingest worker) calls it too.
func WithRequest(ctx context.Context, info *RequestInfo) context.Context {
	return reqctx.With(ctx, info)
}

// RequestFrom returns the RequestInfo in ctx, or nil. The Info is shared by
// the whole request; readers must not modify it.
func RequestFrom(ctx context.Context) *RequestInfo { return reqctx.From(ctx) }
