package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/slogtest"
)

// TestLogsCarryTraceAndRequest: every line logged with the request context
// during a traced request has the trace id of the request's span, the span
// id of the span current where it was logged, and the request id and tenant.
func TestLogsCarryTraceAndRequest(t *testing.T) {
	tel, exp := newTraced(t)
	var buf bytes.Buffer
	log, err := NewLogger(&buf, "json", slog.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	srv := newFakeServer(tel, map[string]http.HandlerFunc{
		docRoute: func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			log.InfoContext(ctx, "handling")
			cctx, child := tel.Tracer("test").Start(ctx, "cache.get")
			log.DebugContext(cctx, "cache miss", "shard", 3)
			child.End()
			log.WarnContext(ctx, "slow store")
			log.Info("no context: no ids") // logged without the context
		},
	})
	req := httptest.NewRequest("GET", "/v1/tenants/acme/docs/k", nil)
	req.Header.Set("X-Request-Id", "req-9")
	req.Header.Set("traceparent", "00-"+incomingTrace+"-"+incomingSpan+"-01")
	srv.ServeHTTP(httptest.NewRecorder(), req)

	spans := exp.GetSpans()
	server := spanByName(t, spans, "GET /v1/tenants/{tenant}/docs/{key...}")
	child := spanByName(t, spans, "cache.get")
	wantSpan := map[string]string{
		"handling":   server.SpanContext.SpanID().String(),
		"cache miss": child.SpanContext.SpanID().String(),
		"slow store": server.SpanContext.SpanID().String(),
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d log lines, want 4:\n%s", len(lines), buf.String())
	}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		msg := rec["msg"].(string)
		if msg == "no context: no ids" {
			if _, ok := rec[LogTraceID]; ok {
				t.Errorf("line logged without a context has a trace_id: %s", line)
			}
			continue
		}
		if got, want := rec[LogTraceID], server.SpanContext.TraceID().String(); got != want {
			t.Errorf("%q: trace_id = %v, want the span's %s", msg, got, want)
		}
		if got, want := rec[LogSpanID], wantSpan[msg]; got != want {
			t.Errorf("%q: span_id = %v, want %s", msg, got, want)
		}
		if rec[LogRequestID] != "req-9" || rec[LogTenant] != "acme" {
			t.Errorf("%q: request_id = %v, tenant = %v; want req-9, acme", msg, rec[LogRequestID], rec[LogTenant])
		}
	}
}

func TestLoggerLevelAtRuntime(t *testing.T) {
	var buf bytes.Buffer
	var level slog.LevelVar
	level.Set(slog.LevelInfo)
	log, err := NewLogger(&buf, "text", &level)
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithRequest(context.Background(), &RequestInfo{ID: "r1"})
	log.DebugContext(ctx, "access")
	if buf.Len() != 0 {
		t.Fatalf("debug line logged at level info: %s", buf.String())
	}
	level.Set(slog.LevelDebug)
	log.DebugContext(ctx, "access")
	if got := buf.String(); !strings.Contains(got, "msg=access") || !strings.Contains(got, "request_id=r1") || strings.Contains(got, "tenant=") {
		t.Errorf("text line = %q, want msg=access request_id=r1 and no tenant", got)
	}
	if _, err := NewLogger(&buf, "xml", &level); err == nil {
		t.Error("NewLogger(xml) succeeded, want an error")
	}
}

// TestHandlerConformance runs the standard slog handler tests on the
// wrapper. (slogtest logs without a request context, so it checks that the
// wrapper passes records, attributes and groups through unchanged.)
func TestHandlerConformance(t *testing.T) {
	var buf bytes.Buffer
	h := NewHandler(slog.NewJSONHandler(&buf, nil))
	results := func() []map[string]any {
		var ms []map[string]any
		for _, line := range bytes.Split(buf.Bytes(), []byte{'\n'}) {
			if len(line) == 0 {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		return ms
	}
	if err := slogtest.TestHandler(h, results); err != nil {
		t.Error(err)
	}
}

// TestLogFromAboveMiddleware: a line logged with the context the server had
// before the tracing middleware ran (its access log line) gets the trace and
// span ids of the request's server span through RequestInfo.Span, and a
// line that already names request_id and tenant does not get them twice.
func TestLogFromAboveMiddleware(t *testing.T) {
	tel, exp := newTraced(t)
	var buf bytes.Buffer
	log, err := NewLogger(&buf, "json", slog.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	srv := newFakeServer(tel, map[string]http.HandlerFunc{docRoute: func(http.ResponseWriter, *http.Request) {}})
	info := &RequestInfo{ID: "req-7"}
	outer := WithRequest(context.Background(), info)
	req := httptest.NewRequestWithContext(outer, "GET", "/v1/tenants/acme/docs/k", nil)
	req.Header.Set("traceparent", "00-"+incomingTrace+"-"+incomingSpan+"-01")
	srv.mux.ServeHTTP(httptest.NewRecorder(), req) // fakeServer.ServeHTTP would make its own Info
	log.DebugContext(outer, "request", "request_id", info.ID, "tenant", info.Tenant)

	server := spanByName(t, exp.GetSpans(), "GET /v1/tenants/{tenant}/docs/{key...}")
	line := strings.TrimSpace(buf.String())
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	if rec[LogTraceID] != incomingTrace || rec[LogSpanID] != server.SpanContext.SpanID().String() {
		t.Errorf("trace_id, span_id = %v, %v; want %s, %s", rec[LogTraceID], rec[LogSpanID], incomingTrace, server.SpanContext.SpanID())
	}
	for _, k := range []string{LogRequestID, LogTenant} {
		if n := strings.Count(line, `"`+k+`":`); n != 1 {
			t.Errorf("%s appears %d times in %s", k, n, line)
		}
	}
	if rec[LogRequestID] != "req-7" || rec[LogTenant] != "acme" {
		t.Errorf("request_id, tenant = %v, %v", rec[LogRequestID], rec[LogTenant])
	}
}
