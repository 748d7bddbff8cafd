package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// The request path of a cached GET, without the server package: a ServeMux
// with the document route, a handler that sets the headers the server sets
// and writes a 1 KiB body held in memory (a cache hit), and a request
// context carrying a reqctx.Info, as the server's exchange provides. The
// variants differ only in the middleware:
//
//	bare     no instrumentation
//	none     Middleware with the none exporter (RED metrics + tenant table)
//	sampled  Middleware with the SDK, ratio 1, batching to a no-op exporter
//	none-pooled  as none, but the writer is no StatusRecorder, so the
//	         middleware wraps it in a pooled statusWriter
//
//	go test -run '^$' -bench Middleware -benchmem -count 10 ./internal/telemetry/
var (
	cachedBody  = make([]byte, 1024)
	etagHeader  = []string{`"v1-3f2a"`}
	jsonHeader  = []string{"application/json"}
	benchTarget = "/v1/tenants/acme/docs/users/42"
)

func cachedGet(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Etag"] = etagHeader
	h["Content-Type"] = jsonHeader
	w.Write(cachedBody)
}

func benchVariants(b *testing.B) []struct {
	name string
	mw   func(http.Handler) http.Handler
} {
	none := setup(b, Config{NoGlobal: true, Getenv: func(string) string { return "" }})
	sampled := setup(b, Config{NoGlobal: true, SampleRatio: 1, SpanExporter: tracetest.NewNoopExporter()})
	return []struct {
		name string
		mw   func(http.Handler) http.Handler
	}{
		{"bare", func(h http.Handler) http.Handler { return h }},
		{"none", none.Middleware(nil)},
		{"sampled", sampled.Middleware(nil)},
	}
}

func benchMux(mw func(http.Handler) http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(docRoute, mw(http.HandlerFunc(cachedGet)))
	return mux
}

// exchangeWriter is a reusable ResponseWriter that records status and body
// size the way the server's exchange does, so that the benchmark measures
// the request path and not httptest.ResponseRecorder's allocations. It
// implements StatusRecorder, as the exchange will (see docs/observability.md).
type exchangeWriter struct {
	h      http.Header
	status int
	bytes  int64
}

func (w *exchangeWriter) Header() http.Header { return w.h }
func (w *exchangeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *exchangeWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.bytes += int64(len(p))
	return len(p), nil
}
func (w *exchangeWriter) Status() int         { return w.status }
func (w *exchangeWriter) BytesWritten() int64 { return w.bytes }

// plainWriter hides StatusRecorder: the middleware wraps it (pooled).
type plainWriter struct{ *exchangeWriter }

func (w plainWriter) Header() http.Header         { return w.exchangeWriter.Header() }
func (w plainWriter) WriteHeader(code int)        { w.exchangeWriter.WriteHeader(code) }
func (w plainWriter) Write(p []byte) (int, error) { return w.exchangeWriter.Write(p) }

func BenchmarkMiddleware(b *testing.B) {
	variants := benchVariants(b)
	variants = append(variants, struct {
		name string
		mw   func(http.Handler) http.Handler
	}{"none-pooled", variants[1].mw})
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			mux := benchMux(v.mw)
			info := &reqctx.Info{ID: "bench"}
			req := httptest.NewRequest("GET", benchTarget, nil).WithContext(reqctx.With(context.Background(), info))
			ew := &exchangeWriter{h: http.Header{}}
			var w http.ResponseWriter = ew
			if v.name == "none-pooled" {
				w = plainWriter{ew}
			}
			b.ReportAllocs()
			for b.Loop() {
				clear(ew.h)
				ew.status, ew.bytes = 0, 0
				info.Start = time.Now()                  // as server.ServeHTTP does, in every variant
				info.Tenant, info.Op = "acme", "doc.get" // as server.wrap does
				mux.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkMiddlewareLoopback is the same over a real HTTP/1.1 keep-alive
// connection on 127.0.0.1: the cost a client sees.
func BenchmarkMiddlewareLoopback(b *testing.B) {
	for _, v := range benchVariants(b) {
		b.Run(v.name, func(b *testing.B) {
			mux := benchMux(v.mw)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mux.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), &reqctx.Info{ID: "bench", Tenant: "acme", Op: "doc.get"})))
			}))
			defer srv.Close()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			url := srv.URL + benchTarget
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
