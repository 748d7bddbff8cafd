package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// NewLogger returns a logger writing format ("json", the default when empty,
// or "text") to w, at the level that level reports on each call — pass a
// *slog.LevelVar to change it at runtime (the access log is at Debug).
// Every record logged with a context gets trace_id and span_id from the
// context's span, and request_id and tenant from its [RequestInfo]; see
// [NewHandler].
func NewLogger(w io.Writer, format string, level slog.Leveler) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch format {
	case "", "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, configErr("log format %q: want json or text", format)
	}
	return slog.New(NewHandler(h)), nil
}

// Log attribute keys added by the handler of [NewHandler].
const (
	LogTraceID   = "trace_id"
	LogSpanID    = "span_id"
	LogRequestID = "request_id"
	LogTenant    = "tenant"
)

// NewHandler wraps h so that each record gets the request's identity from
// its context: trace_id and span_id when the context holds a valid span
// context (sampled or not) — or else its RequestInfo names the request's
// server span — and request_id and tenant when it holds a RequestInfo
// (tenant only when set; neither when the record already has that key).
// Records logged without a context (slog.Info instead of slog.InfoContext)
// get nothing.
//
// The attributes are added to the record, so under a WithGroup they land in
// the group; log request lines from a logger without groups.
func NewHandler(h slog.Handler) slog.Handler { return contextHandler{h} }

type contextHandler struct{ inner slog.Handler }

func (h contextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	info := RequestFrom(ctx)
	if !sc.IsValid() && info != nil {
		// Logged with a context from above the tracing middleware (the
		// server's access log): the request's server span.
		sc = info.Span
	}
	if !sc.IsValid() && info == nil {
		return h.inner.Handle(ctx, r)
	}
	// A record that already has request_id or tenant (the server's access
	// log line sets both) keeps its own: adding them again would write
	// duplicate keys.
	var hasID, hasTenant bool
	if info != nil {
		r.Attrs(func(a slog.Attr) bool {
			hasID = hasID || a.Key == LogRequestID
			hasTenant = hasTenant || a.Key == LogTenant
			return !(hasID && hasTenant)
		})
	}
	// Records passed by value share their attribute storage; slog panics if
	// two copies both grow it, so clone before adding.
	r = r.Clone()
	if sc.IsValid() {
		r.AddAttrs(slog.String(LogTraceID, sc.TraceID().String()), slog.String(LogSpanID, sc.SpanID().String()))
	}
	if info != nil {
		if !hasID {
			r.AddAttrs(slog.String(LogRequestID, info.ID))
		}
		if info.Tenant != "" && !hasTenant {
			r.AddAttrs(slog.String(LogTenant, info.Tenant))
		}
	}
	if err := h.inner.Handle(ctx, r); err != nil {
		return fmt.Errorf("telemetry: log: %w", err)
	}
	return nil
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.inner.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.inner.WithGroup(name)}
}
