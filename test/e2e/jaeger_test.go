package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/telemetry/jaegertest"
)

// TestJaegerTraces runs the real binary with the otlp exporter against a
// real Jaeger (internal/telemetry/jaegertest: $CAIRN_JAEGER_BIN or the one
// scripts/jaeger.sh built; skipped without it, failed under CI=true), sends
// a PUT and a GET that continue a known trace, stops the node with SIGTERM
// (which flushes its spans), and reads the trace back through Jaeger's
// query API:
//
//	caller span A → PUT server span → store.commit (cairn.store.group_size)
//	caller span B → GET server span → cache.get (cairn.cache.hit: the commit filled the cache)
func TestJaegerTraces(t *testing.T) {
	j := jaegertest.Start(t)
	for _, tc := range []struct{ proto, endpoint string }{
		{"http/protobuf", "http://" + j.OTLPHTTP},
		{"grpc", "http://" + j.OTLPGRPC},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			// startNode passes the test process's environment on.
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tc.endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", tc.proto)
			t.Setenv("OTEL_TRACES_EXPORTER", "") // the flag decides
			p := startNode(t, t.TempDir(), "--trace-exporter", "otlp", "--trace-sample-ratio", "1")

			traceID, putParent, getParent := randHex(t, 16), randHex(t, 8), randHex(t, 8)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, r := range []struct {
				method, body, parent string
				code                 int
			}{
				{"PUT", `{"traced":true}`, putParent, http.StatusCreated},
				{"GET", "", getParent, http.StatusOK},
			} {
				resp, body, err := p.do(ctx, r.method, "traced", r.body, "traceparent", "00-"+traceID+"-"+r.parent+"-01")
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != r.code {
					t.Fatalf("%s: %d %s, want %d", r.method, resp.StatusCode, body, r.code)
				}
			}
			httpClient.CloseIdleConnections()
			if err := p.stop(); err != nil {
				t.Fatalf("cairn exit after SIGTERM: %v\n%s", err, p.stderr)
			}

			spans, err := j.Trace(ctx, traceID, 4)
			if err != nil {
				t.Fatalf("%v\ncairn stderr:\n%s", err, p.stderr)
			}
			byName := map[string]jaegertest.Span{}
			for _, s := range spans {
				if _, dup := byName[s.OperationName]; dup {
					t.Errorf("two spans named %q", s.OperationName)
				}
				byName[s.OperationName] = s
				if s.Service != "cairn" {
					t.Errorf("span %s: service %q, want cairn", s.OperationName, s.Service)
				}
			}
			const route = "/v1/tenants/{tenant}/docs/{key...}"
			put, commit := byName["PUT "+route], byName["store.commit"]
			get, cache := byName["GET "+route], byName["cache.get"]
			if put.SpanID == "" || commit.SpanID == "" || get.SpanID == "" || cache.SpanID == "" {
				t.Fatalf("spans in Jaeger: %+v; want the PUT and GET server spans, store.commit and cache.get", spans)
			}
			if len(spans) != 4 {
				t.Errorf("%d spans in the trace, want 4 (a cache hit has no store.get)", len(spans))
			}
			for _, e := range []struct {
				name, got, want string
			}{
				{"PUT server span", put.ParentSpanID, putParent},
				{"store.commit", commit.ParentSpanID, put.SpanID},
				{"GET server span", get.ParentSpanID, getParent},
				{"cache.get", cache.ParentSpanID, get.SpanID},
			} {
				if e.got != e.want {
					t.Errorf("%s: parent %q, want %q", e.name, e.got, e.want)
				}
			}
			for _, e := range []struct {
				span jaegertest.Span
				tag  string
				want any
			}{
				{put, "http.route", route},
				{put, "http.response.status_code", float64(201)},
				{put, "cairn.tenant", "demo"},
				{put, "cairn.op", "doc.put"},
				{commit, "cairn.store.group_size", float64(1)},
				{get, "http.response.status_code", float64(200)},
				{get, "cairn.op", "doc.get"},
				{cache, "cairn.cache.hit", true},
			} {
				if got := e.span.Tags[e.tag]; got != e.want {
					t.Errorf("%s: %s = %v (%T), want %v", e.span.OperationName, e.tag, got, got, e.want)
				}
			}
		})
	}
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
