package telemetry

import (
	"context"
	"io"
	"net/http"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// docRoute is the server's document route pattern.
const docRoute = "GET /v1/tenants/{tenant}/docs/{key...}"

// newTraced sets up telemetry exporting synchronously to an in-memory
// exporter, without touching the otel globals.
func newTraced(t testing.TB) (*Telemetry, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tel := setup(t, Config{NodeID: "n1", Version: "v-test", NoGlobal: true,
		SpanExporter: exp, testSync: true})
	return tel, exp
}

func setup(t testing.TB, cfg Config) *Telemetry {
	t.Helper()
	tel, err := Setup(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return tel
}

// fakeServer stands in for internal/server: it gives each request a
// reqctx.Info (id from X-Request-Id), routes with a ServeMux, and — like
// server.wrap — fills Tenant and Op after routing, then runs the middleware
// per route.
type fakeServer struct {
	mux *http.ServeMux
}

func newFakeServer(tel *Telemetry, routes map[string]http.HandlerFunc) *fakeServer {
	s := &fakeServer{mux: http.NewServeMux()}
	mw := tel.Middleware(nil)
	for pattern, h := range routes {
		inner := mw(fakeAuth(h))
		s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := reqctx.From(r.Context())
			info.Op = "doc.get"
			info.Tenant = r.PathValue("tenant")
			inner.ServeHTTP(w, r)
		}))
	}
	return s
}

// fakeAuth stands for the server's authentication, which runs inside the
// middleware: a request with "X-Fake-Auth: fail" is refused with 401, the
// others are marked authenticated for the tenant they name.
func fakeAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Fake-Auth") == "fail" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reqctx.From(r.Context()).Authenticated = true
		h.ServeHTTP(w, r)
	})
}

func (s *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := &reqctx.Info{ID: r.Header.Get("X-Request-Id")}
	s.mux.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), info)))
}

// spanByName finds the ended span called name.
func spanByName(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.Name == name {
			return s
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	t.Fatalf("no span %q among %q", name, names)
	return tracetest.SpanStub{}
}

func attrs(s tracetest.SpanStub) map[string]any {
	m := map[string]any{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

var _ sdktrace.SpanExporter = (*tracetest.InMemoryExporter)(nil)

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

var _ io.Writer = nopWriter{}
