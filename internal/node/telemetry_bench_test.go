package node

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// BenchmarkNodeGet measures the request path of an in-process HTTP GET of a
// cached document on the real stack, to show what telemetry costs there: the server's handler (request id,
// routing, tenant check, the limiter middleware, the write deadline, token check),
// the docs service and a cache hit of a 1 KiB document, served in-process
// into a reusable ResponseWriter. The variants differ only in the telemetry
// middleware:
//
//	off      no telemetry middleware
//	none     the node's middleware with the none exporter (RED metrics and
//	         the tenant table; no spans)
//	sampled  the middleware with the SDK, ratio 1, batching to a no-op
//	         exporter; the docs service's cache.get child span too
//
// The server is built like Node.newAPI (same middleware, same order), minus
// the ingest route, so that "off" can leave telemetry out.
//
//	go test -run '^$' -bench NodeGet -benchmem -count 10 ./internal/node/
func BenchmarkNodeGet(b *testing.B) {
	for _, v := range benchVariants(b) {
		b.Run(v.name, func(b *testing.B) {
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				v.h.ServeHTTP(w, v.req)
			}
			b.StopTimer()
			if w.status != http.StatusOK {
				b.Fatalf("GET: %d", w.status)
			}
		})
	}
}

// BenchmarkNodeGetInterleaved measures the same variants in alternating
// blocks of 64 requests and reports each variant's median block time per
// request, and none's and sampled's overhead over off in percent. On a
// shared machine, load that comes and goes then hits every variant alike,
// where sequential sub-benchmarks each see a different minute.
//
//	go test -run '^$' -bench NodeGetInterleaved -count 5 ./internal/node/
func BenchmarkNodeGetInterleaved(b *testing.B) {
	const block = 64
	vs := benchVariants(b)
	w := &benchWriter{h: http.Header{}}
	per := make([][]float64, len(vs)) // ns per request of each block, by variant
	for b.Loop() {
		for i, v := range vs {
			start := time.Now()
			for range block {
				w.reset()
				v.h.ServeHTTP(w, v.req)
			}
			per[i] = append(per[i], float64(time.Since(start).Nanoseconds())/block)
		}
	}
	med := make([]float64, len(vs))
	for i, v := range vs {
		slices.Sort(per[i])
		med[i] = per[i][len(per[i])/2]
		b.ReportMetric(med[i], v.name+"-ns/req")
	}
	for i := 1; i < len(vs); i++ {
		b.ReportMetric(100*(med[i]-med[0])/med[0], vs[i].name+"-overhead-%")
	}
	b.ReportMetric(0, "ns/op") // one op is 3×64 requests: not meaningful
}

type benchVariant struct {
	name string
	h    http.Handler
	req  *http.Request
}

// benchVariants starts a node holding a 1 KiB document in its cache and
// returns the three handlers, each checked to answer 200 with the body.
func benchVariants(b *testing.B) []benchVariant {
	tok, hash := newTokenB(b)
	n, err := Start(context.Background(), Config{
		DataDir: b.TempDir(), Listen: "127.0.0.1:0", Durability: store.Buffered,
		Logger: slog.New(slog.DiscardHandler), // the access log is at debug: off
		Auth:   server.Auth{Tenants: map[string][][32]byte{"acme": {hash}}},
		Trace:  telemetry.Config{Exporter: telemetry.ExporterNone, NoGlobal: true},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	body := make([]byte, 1024)
	for i := range body {
		body[i] = 'a'
	}
	body[0], body[len(body)-1] = '"', '"'
	if _, _, err := n.docs.Put(context.Background(), "acme", "users/42", body, doc.Precondition{}); err != nil {
		b.Fatal(err)
	}
	sampled, err := telemetry.Setup(context.Background(), telemetry.Config{
		SpanExporter: tracetest.NewNoopExporter(), SampleRatio: 1, NoGlobal: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sampled.Shutdown(context.Background()) })

	var vs []benchVariant
	for _, v := range []struct {
		name string
		tel  *telemetry.Telemetry
	}{{"off", nil}, {"none", n.tel}, {"sampled", sampled}} {
		h := benchServer(b, n, v.tel)
		req := httptest.NewRequest("GET", "/v1/tenants/acme/docs/users/42", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := &benchWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK || w.bytes != int64(len(body)) {
			b.Fatalf("%s: GET: %d, %d bytes", v.name, w.status, w.bytes)
		}
		vs = append(vs, benchVariant{v.name, h, req})
	}
	return vs
}

// benchServer is Node.newAPI without the ingest route, with tel's
// middleware (none when tel is nil) and limits that never shed.
func benchServer(b *testing.B, n *Node, tel *telemetry.Telemetry) *server.Server {
	lc := resilience.DefaultLimiterConfig()
	lc.TenantRate, lc.TenantBurst = 1e12, 1<<30
	limiter, err := resilience.NewLimiter(lc)
	if err != nil {
		b.Fatal(err)
	}
	var mw []func(http.Handler) http.Handler
	if tel != nil {
		mw = append(mw, tel.Middleware(nil))
	}
	s, err := server.New(server.Options{
		Docs: n.docs, Auth: n.cfg.Auth, Logger: n.log,
		Ready: n.ready.Load, Middleware: mw,
		Admission: server.Admission{Limiter: limiter},
		Deadline:  resilience.Deadlines{Default: 5 * time.Second, Max: 30 * time.Second}.Context,
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchWriter is a reusable ResponseWriter: httptest.ResponseRecorder
// allocates per request, which would drown what is measured.
type benchWriter struct {
	h      http.Header
	status int
	bytes  int64
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.bytes += int64(len(p))
	return len(p), nil
}
func (w *benchWriter) reset() { clear(w.h); w.status, w.bytes = 0, 0 }

func newTokenB(b *testing.B) (string, [32]byte) {
	tok, hash, err := server.NewToken()
	if err != nil {
		b.Fatal(err)
	}
	return tok, hash
}
