package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/telemetry/jaegertest"
)

// TestJaegerEndToEnd exports a traced call over OTLP (gRPC and HTTP) to a
// real Jaeger and reads the span tree back through its query API:
// client span → server span (continued from traceparent) → cache.get.
func TestJaegerEndToEnd(t *testing.T) {
	j := jaegertest.Start(t)
	for _, tc := range []struct{ proto, endpoint string }{
		{"grpc", "http://" + j.OTLPGRPC},
		{"http/protobuf", "http://" + j.OTLPHTTP},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tc.endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", tc.proto)
			tel, err := Setup(context.Background(), Config{Exporter: "otlp", NodeID: "e2e", Version: "v-e2e", NoGlobal: true})
			if err != nil {
				t.Fatal(err)
			}
			defer tel.Shutdown(context.Background())

			srv := httptest.NewServer(newFakeServer(tel, map[string]http.HandlerFunc{
				docRoute: func(w http.ResponseWriter, r *http.Request) {
					_, span := tel.Tracer("test").Start(r.Context(), "cache.get")
					span.End()
					io.WriteString(w, `{"ok":true}`)
				},
			}))
			defer srv.Close()
			transport := &http.Transport{}
			defer transport.CloseIdleConnections()
			hc := &http.Client{Transport: InjectTransport(transport)}

			ctx, root := tel.Tracer("test").Start(context.Background(), "client call")
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/tenants/acme/docs/k1", nil)
			req.Header.Set("X-Request-Id", "e2e-"+tc.proto)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			root.End()
			if err := tel.Shutdown(context.Background()); err != nil { // flushes
				t.Fatal(err)
			}

			qctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			traceID := root.SpanContext().TraceID().String()
			spans, err := j.Trace(qctx, traceID, 3)
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]jaegertest.Span{}
			for _, s := range spans {
				byName[s.OperationName] = s
				if s.Service != "cairn" {
					t.Errorf("span %q service = %q, want cairn", s.OperationName, s.Service)
				}
			}
			clientSpan, server, cache := byName["client call"], byName["GET /v1/tenants/{tenant}/docs/{key...}"], byName["cache.get"]
			if clientSpan.SpanID == "" || server.SpanID == "" || cache.SpanID == "" {
				t.Fatalf("spans in Jaeger = %+v, want client call, the server span and cache.get", spans)
			}
			if clientSpan.ParentSpanID != "" || server.ParentSpanID != clientSpan.SpanID || cache.ParentSpanID != server.SpanID {
				t.Errorf("tree: client %s (parent %q), server %s (parent %s), cache (parent %s); want client → server → cache",
					clientSpan.SpanID, clientSpan.ParentSpanID, server.SpanID, server.ParentSpanID, cache.ParentSpanID)
			}
			for k, want := range map[string]any{
				"http.route": "/v1/tenants/{tenant}/docs/{key...}", "cairn.tenant": "acme",
				"cairn.request_id": "e2e-" + tc.proto, "http.request.method": "GET",
			} {
				if got := server.Tags[k]; got != want {
					t.Errorf("server span tag %s = %v, want %v", k, got, want)
				}
			}
			if got := server.Tags["http.response.status_code"]; got != float64(200) {
				t.Errorf("server span status code tag = %v (%T), want 200", got, got)
			}
		})
	}
}
