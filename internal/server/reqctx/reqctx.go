// Package reqctx carries the identity of one API request — its request id,
// tenant and operation — in a context.Context, so that code far from the HTTP
// layer (logging handlers, the docs service, tracing) can label what it does
// without importing the server.
//
// It is a leaf package on purpose: the server sets the value, and a logging
// handler in another package reads it, without an import cycle.
//
// # Sharp edges
//
// [From] returns a pointer shared by the whole request. The server fills in
// ID and Start, then Tenant and Op after routing, and Authenticated once the
// token was checked; the tracing middleware fills in Span; all before the
// handler runs. Nothing changes them afterwards, and readers must not modify
// the Info. Middleware that runs before authentication reads Authenticated
// only after calling the next handler.
package reqctx

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Info identifies one request.
type Info struct {
	ID     string // the X-Request-ID, accepted from the client or generated
	Tenant string // the tenant named in the path; empty for routes without one
	Op     string // the operation, e.g. "doc.get", "doc.list"
	// Authenticated is set once the request passed authentication: its
	// token may act on Tenant (a tenant's own or an admin's) or on the
	// admin route it asked for. Until then Tenant is only what the path
	// names, which anyone can make up.
	Authenticated bool
	// Shed is set by the admission middleware when it answered the
	// request 429 or 503 itself (class exhausted), so that the access log
	// line, written outside it, says so.
	Shed bool
	// Start is when the server took the request (its clock); the tracing
	// middleware times the request and starts its span from it.
	Start time.Time
	// Span is the request's server span when it is traced (zero otherwise),
	// set by the tracing middleware. The span itself lives in the contexts
	// below the middleware; this copy is for code that only has the context
	// from above it — the server's access log line — so that line carries
	// the trace id too.
	Span trace.SpanContext
}

type key struct{}

// With returns a copy of parent that carries info.
func With(parent context.Context, info *Info) context.Context {
	return context.WithValue(parent, key{}, info)
}

// From returns the Info in ctx, or nil if there is none.
func From(ctx context.Context) *Info {
	info, _ := ctx.Value(key{}).(*Info)
	return info
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	if info := From(ctx); info != nil {
		return info.ID
	}
	return ""
}
