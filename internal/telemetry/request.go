package telemetry

import (
	"context"

	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// RequestInfo is the seed's TracingContext: who a request is (request id,
// tenant, operation). It is the server's [reqctx.Info], not a copy of it: the
// server already fills one per request, embedded in its per-request
// exchange, so there is one struct and no extra allocation. The parent span
// and the timing live in the OTel span that the same context carries
// ([trace.SpanFromContext]); the start time is the span's.
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
