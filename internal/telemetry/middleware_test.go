package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const (
	incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpan  = "00f067aa0ba902b7"
)

func TestMiddlewareSpans(t *testing.T) {
	tel, exp := newTraced(t)
	srv := newFakeServer(tel, map[string]http.HandlerFunc{
		docRoute: func(w http.ResponseWriter, r *http.Request) {
			_, child := tel.Tracer("test").Start(r.Context(), "cache.get")
			_, grandchild := tel.Tracer("test").Start(trace.ContextWithSpan(r.Context(), child), "store.get")
			grandchild.End()
			child.End()
			io.WriteString(w, `{"a":1}`)
		},
		"PUT /v1/tenants/{tenant}/docs/{key...}": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusServiceUnavailable)
		},
	})

	req := httptest.NewRequest("GET", "/v1/tenants/acme/docs/a/b", nil)
	req.Header.Set("traceparent", "00-"+incomingTrace+"-"+incomingSpan+"-01")
	req.Header.Set("X-Request-Id", "req-1")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("GET: status %d", rec.Code)
	}

	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("got %d spans, want 3", len(spans))
	}
	server := spanByName(t, spans, "GET /v1/tenants/{tenant}/docs/{key...}")
	if got, want := server.SpanKind, trace.SpanKindServer; got != want {
		t.Errorf("server span kind = %v, want %v", got, want)
	}
	if got := server.SpanContext.TraceID().String(); got != incomingTrace {
		t.Errorf("server span trace id = %s, want the incoming %s", got, incomingTrace)
	}
	if got := server.Parent.SpanID().String(); got != incomingSpan || !server.Parent.IsRemote() {
		t.Errorf("server span parent = %s (remote %v), want the incoming %s", got, server.Parent.IsRemote(), incomingSpan)
	}
	want := map[string]any{
		"http.request.method":       "GET",
		"http.route":                "/v1/tenants/{tenant}/docs/{key...}",
		"http.response.status_code": int64(200),
		"cairn.request_id":          "req-1",
		"cairn.tenant":              "acme",
		"cairn.op":                  "doc.get",
	}
	got := attrs(server)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("server span attribute %s = %v, want %v", k, got[k], v)
		}
	}
	if server.Status.Code != codes.Unset {
		t.Errorf("server span status = %v, want unset", server.Status.Code)
	}
	child := spanByName(t, spans, "cache.get")
	grand := spanByName(t, spans, "store.get")
	if child.Parent.SpanID() != server.SpanContext.SpanID() || child.SpanContext.TraceID() != server.SpanContext.TraceID() {
		t.Errorf("cache.get parent = %s, want the server span %s", child.Parent.SpanID(), server.SpanContext.SpanID())
	}
	if grand.Parent.SpanID() != child.SpanContext.SpanID() {
		t.Errorf("store.get parent = %s, want cache.get %s", grand.Parent.SpanID(), child.SpanContext.SpanID())
	}
	for _, s := range spans {
		res := map[string]string{}
		for _, kv := range s.Resource.Attributes() {
			res[string(kv.Key)] = kv.Value.String()
		}
		if res["service.name"] != "cairn" || res["service.version"] != "v-test" || res["cairn.node_id"] != "n1" {
			t.Errorf("span %s resource = %v, want service.name=cairn service.version=v-test cairn.node_id=n1", s.Name, res)
		}
	}

	// A 5xx without an incoming trace: a new root, status Error.
	exp.Reset()
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("PUT", "/v1/tenants/acme/docs/x", strings.NewReader("{}")))
	spans = exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("PUT: got %d spans, want 1", len(spans))
	}
	put := spans[0]
	if put.Name != "PUT /v1/tenants/{tenant}/docs/{key...}" || put.Parent.IsValid() {
		t.Errorf("PUT span = %q with parent %v, want a root named by the route", put.Name, put.Parent)
	}
	if put.Status.Code != codes.Error || attrs(put)["http.response.status_code"] != int64(503) {
		t.Errorf("PUT span status = %v code %v, want Error and 503", put.Status.Code, attrs(put)["http.response.status_code"])
	}
}

func TestMiddlewarePanicPropagates(t *testing.T) {
	tel, exp := newTraced(t)
	srv := newFakeServer(tel, map[string]http.HandlerFunc{
		docRoute: func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) },
	})
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler", p)
			}
		}()
		srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/tenants/acme/docs/k", nil))
	}()
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Status.Code != codes.Error {
		t.Fatalf("spans = %v, want one with status Error", spans)
	}
	m := tel.Metrics
	if got := testutil.ToFloat64(m.httpRequests.WithLabelValues("/v1/tenants/{tenant}/docs/{key...}", "GET", "500")); got != 1 {
		t.Errorf("requests{code=500} = %v, want 1", got)
	}
	if got := m.httpInFlight.gauge("/v1/tenants/{tenant}/docs/{key...}").Load(); got != 0 {
		t.Errorf("in flight after a panic = %v, want 0", got)
	}
}

func TestMiddlewareNoneIgnoresTraceparent(t *testing.T) {
	tel := setup(t, Config{NoGlobal: true, Getenv: func(string) string { return "" }})
	if tel.Exporter() != ExporterNone {
		t.Fatalf("exporter = %q, want none", tel.Exporter())
	}
	var sc trace.SpanContext
	srv := newFakeServer(tel, map[string]http.HandlerFunc{
		docRoute: func(w http.ResponseWriter, r *http.Request) { sc = trace.SpanContextFromContext(r.Context()) },
	})
	req := httptest.NewRequest("GET", "/v1/tenants/acme/docs/k", nil)
	req.Header.Set("traceparent", "00-"+incomingTrace+"-"+incomingSpan+"-01")
	srv.ServeHTTP(httptest.NewRecorder(), req)
	if sc.IsValid() {
		t.Errorf("none exporter: handler saw span context %v, want none (zero-cost mode)", sc)
	}
	if got := testutil.ToFloat64(tel.Metrics.httpRequests.WithLabelValues("/v1/tenants/{tenant}/docs/{key...}", "GET", "200")); got != 1 {
		t.Errorf("none exporter: requests{code=200} = %v, want 1 (metrics do not depend on tracing)", got)
	}
}

func TestMiddlewareFlushAndUnwrap(t *testing.T) {
	tel := setup(t, Config{NoGlobal: true})
	srv := newFakeServer(tel, map[string]http.HandlerFunc{
		docRoute: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "a")
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("Flush through the middleware: %v", err)
			}
		},
	})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/tenants/acme/docs/k", nil))
	if !rec.Flushed {
		t.Error("recorder not flushed")
	}
}

func TestTenantTable(t *testing.T) {
	tel := setup(t, Config{NoGlobal: true, MaxTenants: 2})
	srv := newFakeServer(tel, map[string]http.HandlerFunc{
		docRoute: func(w http.ResponseWriter, r *http.Request) {
			if r.PathValue("key") == "missing" {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, "12345")
		},
	})
	for _, p := range []string{"a/docs/k", "a/docs/missing", "b/docs/k", "c/docs/k", "d/docs/k"} {
		srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/tenants/"+p, nil))
	}
	tel.Metrics.AddIngest("a", IngestCounts{Records: 10, Bytes: 100, Malformed: 1, Oversize: 2, InvalidKey: 4})
	// Requests that fail authentication share one row, whatever tenant they
	// name: strangers cannot fill the table.
	for i := range 3 {
		r := httptest.NewRequest("GET", fmt.Sprintf("/v1/tenants/made-up-%d/docs/k", i), nil)
		r.Header.Set("X-Fake-Auth", "fail")
		srv.ServeHTTP(httptest.NewRecorder(), r)
	}

	rec := httptest.NewRecorder()
	tel.TenantStatsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/admin/tenants", nil))
	var got TenantTable
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	want := TenantTable{Limit: 2, Tenants: map[string]TenantStats{
		"a":                {Requests: 2, ClientErrors: 1, ResponseBytes: 5 + int64(len("404 page not found\n")), IngestRecords: 10, IngestBytes: 100, IngestSkipped: 7},
		"b":                {Requests: 1, ResponseBytes: 5},
		"_other":           {Requests: 2, ResponseBytes: 10},
		"_unauthenticated": {Requests: 3, ClientErrors: 3, ResponseBytes: 3 * int64(len("unauthorized\n"))},
	}}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("tenant table = %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestRouteLabel(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"GET /v1/tenants/{tenant}/docs/{key...}", "/v1/tenants/{tenant}/docs/{key...}"},
		{"/v1/x", "/v1/x"},
		{"POST  /v1/ingest", "/v1/ingest"},
		{"", "_unmatched"},
	} {
		if got := routeLabel(tc.pattern); got != tc.want {
			t.Errorf("routeLabel(%q) = %q, want %q", tc.pattern, got, tc.want)
		}
	}
	if got := normalMethod("BREW"); got != "_OTHER" {
		t.Errorf("normalMethod(BREW) = %q, want _OTHER", got)
	}
}

func TestRouteTableBounded(t *testing.T) {
	tel := setup(t, Config{NoGlobal: true})
	for i := range maxRoutes + 10 {
		tel.red.entry("/r/"+strings.Repeat("x", i), "GET")
	}
	if n := len(*tel.red.routes.Load()); n > maxRoutes+1 {
		t.Errorf("route table has %d entries, want at most %d", n, maxRoutes+1)
	}
}
