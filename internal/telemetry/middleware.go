package telemetry

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Span attribute keys of cairn's own (semconv has none for these).
const (
	AttrRequestID = attribute.Key("cairn.request_id")
	AttrTenant    = attribute.Key("cairn.tenant")
	AttrOp        = attribute.Key("cairn.op")
)

// StatusRecorder is implemented by a ResponseWriter that already records
// what was answered (the server's per-request exchange can). When the
// middleware finds one — directly or through Unwrap — it reads the status
// from it instead of wrapping the writer.
type StatusRecorder interface {
	// Status is the response status, 0 if nothing was written yet.
	Status() int
	// BytesWritten is the number of body bytes written.
	BytesWritten() int64
}

// Middleware returns HTTP middleware that, for each request:
//
//   - counts it in cairn_http_requests_total, _request_duration_seconds and
//     _requests_in_flight, labelled with route(r) and the method, timed from
//     the RequestInfo's Start (when the server took the request) if set,
//     else from the middleware's start;
//   - unless the exporter is none: continues an incoming W3C traceparent and
//     starts a server span named "METHOD route" with http.request.method,
//     http.route, http.response.status_code, cairn.request_id, cairn.tenant
//     and cairn.op, status Error on a 5xx or a panic; the span is in the
//     request's context for child spans and logs;
//   - adds it to the tenant table when the request names a tenant: to the
//     tenant's row if it authenticated for it (RequestInfo.Authenticated),
//     else to the shared "_unauthenticated" row.
//
// route names the route pattern; nil means r.Pattern, which is set once
// net/http's ServeMux has routed the request — so mount the middleware
// inside the mux (per route, as the server's Options.Middleware does), not
// around it. A route of "" is labelled "_unmatched". Route strings must come
// from a fixed set (patterns, not paths): each distinct route and method
// pair is a set of series, bounded at 256 pairs (later ones share "_other").
//
// With the none exporter the middleware allocates nothing per request once a
// route has been seen: the metric children are resolved once per (route,
// method) and cached, and the status is read from a [StatusRecorder] or a
// pooled wrapper. It lets panics through (http.ErrAbortHandler included),
// recording them as 500 unless a status was already sent.
func (t *Telemetry) Middleware(route func(*http.Request) string) func(http.Handler) http.Handler {
	if route == nil {
		route = patternOf
	}
	return func(next http.Handler) http.Handler {
		first := new(atomic.Pointer[seenRoute])
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.serve(next, route, first, w, r)
		})
	}
}

func patternOf(r *http.Request) string { return r.Pattern }

// seenRoute is the first (route, method) a mounted handler served, and its
// entry.
type seenRoute struct {
	route, method string
	e             *routeEntry
}

// routeOf returns the entry of (route, method). Mounted per route, one
// handler nearly always serves one (route, method), so the first one it
// served is kept and compared first: ServeMux hands out the same pattern
// string each time, so that is a pointer compare, where the shared map
// hashes both strings. Only the first is kept (others, like HEAD on a GET
// route, go to the map), so a handler serving two alternately does not
// allocate a new seenRoute per request.
func (t *Telemetry) routeOf(first *atomic.Pointer[seenRoute], route, method string) *routeEntry {
	if s := first.Load(); s != nil && s.route == route && s.method == method {
		return s.e
	}
	e := t.red.entry(route, method)
	if first.Load() == nil {
		first.CompareAndSwap(nil, &seenRoute{route, method, e})
	}
	return e
}

// serve is the middleware's body; a method so that its defer is open-coded
// (no closure allocation).
func (t *Telemetry) serve(next http.Handler, route func(*http.Request) string, first *atomic.Pointer[seenRoute], w http.ResponseWriter, r *http.Request) {
	e := t.routeOf(first, route(r), r.Method)
	info := RequestFrom(r.Context())
	var start time.Time
	if info != nil && !info.Start.IsZero() {
		start = info.Start // the server's clock read: a clock read is most of this middleware's cost
	} else {
		start = time.Now()
	}
	e.inflight.Add(1)

	var span trace.Span
	if t.tracing {
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span = t.tracer.Start(ctx, e.spanName,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithTimestamp(start),
			trace.WithAttributes(e.methodAttr, e.routeAttr))
		r = r.WithContext(ctx)
		if info != nil {
			info.Span = span.SpanContext() // for the access log, logged from above this middleware
		}
	}

	rec, sw := recorderOf(w)
	if sw != nil {
		w = sw
	}
	panicked := true
	defer func() {
		t.finish(e, info, rec, span, start, panicked)
		if sw != nil && !panicked { // after a panic the writer may still be referenced
			sw.ResponseWriter = nil
			writerPool.Put(sw)
		}
	}()
	next.ServeHTTP(w, r)
	panicked = false
}

func (t *Telemetry) finish(e *routeEntry, info *RequestInfo, rec StatusRecorder, span trace.Span, start time.Time, panicked bool) {
	end := time.Now()
	code := rec.Status()
	switch {
	case code == 0 && panicked:
		code = http.StatusInternalServerError
	case code == 0:
		code = http.StatusOK // net/http answers 200 to a handler that wrote nothing
	}
	e.inflight.Add(-1)
	e.duration.Observe(end.Sub(start).Seconds())
	e.requests(code).Inc()

	if info != nil && info.Tenant != "" {
		// Read after the handler: authentication runs inside this middleware.
		t.Metrics.tenants.addRequest(info.Tenant, info.Authenticated, code, rec.BytesWritten())
	}
	if span == nil {
		return
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(code))
	if info != nil {
		span.SetAttributes(AttrRequestID.String(info.ID), AttrTenant.String(info.Tenant), AttrOp.String(info.Op))
	}
	switch {
	case panicked:
		span.SetStatus(codes.Error, "handler panicked or aborted the response")
	case code >= 500:
		span.SetStatus(codes.Error, http.StatusText(code))
	}
	span.End(trace.WithTimestamp(end))
}

// recorderOf finds a StatusRecorder behind w, or wraps w in a pooled one
// (returned as sw, to be put back).
func recorderOf(w http.ResponseWriter) (StatusRecorder, *statusWriter) {
	for u := w; u != nil; {
		if rec, ok := u.(StatusRecorder); ok {
			return rec, nil
		}
		uw, ok := u.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		u = uw.Unwrap()
	}
	sw := writerPool.Get().(*statusWriter)
	*sw = statusWriter{ResponseWriter: w}
	return sw, sw
}

var writerPool = sync.Pool{New: func() any { return new(statusWriter) }}

// statusWriter records the status and body size. It hides the inner
// writer's optional interfaces except Flush; the rest are reachable through
// Unwrap, as http.ResponseController expects.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

var (
	_ StatusRecorder = (*statusWriter)(nil)
	_ http.Flusher   = (*statusWriter)(nil)
)

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx are interim answers
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush() // no flusher: nothing to do
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
func (w *statusWriter) Status() int                 { return w.status }
func (w *statusWriter) BytesWritten() int64         { return w.bytes }

// red holds the RED metric children per (route, method), resolved once.
type red struct {
	m      *Metrics
	routes atomic.Pointer[map[routeKey]*routeEntry] // copy-on-write; never modified once stored

	mu sync.Mutex // serialises inserts into routes
}

const maxRoutes = 256

type routeKey struct{ route, method string }

// routeEntry is everything the middleware needs for one (route, method),
// computed once so that the request path does no label hashing, string
// building or attribute allocation.
type routeEntry struct {
	inflight   *atomic.Int64 // the route's in-flight count, shared by its methods; read by inflightVec
	duration   prometheus.Observer
	byCode     *prometheus.CounterVec // curried with route and method
	spanName   string                 // "GET /v1/tenants/{tenant}/docs/{key...}"
	methodAttr attribute.KeyValue
	routeAttr  attribute.KeyValue

	codes atomic.Pointer[map[int]prometheus.Counter] // copy-on-write
	mu    sync.Mutex                                 // serialises inserts into codes
}

func newRED(m *Metrics) *red {
	r := &red{m: m}
	r.routes.Store(&map[routeKey]*routeEntry{})
	return r
}

func (r *red) entry(route, method string) *routeEntry {
	k := routeKey{route, normalMethod(method)}
	if e, ok := (*r.routes.Load())[k]; ok {
		return e
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	routes := *r.routes.Load()
	if e, ok := routes[k]; ok {
		return e
	}
	if len(routes) >= maxRoutes {
		k.route = "_other"
		if e, ok := routes[k]; ok {
			return e
		}
	}
	label := routeLabel(k.route)
	e := &routeEntry{
		inflight:   r.m.httpInFlight.gauge(label),
		duration:   r.m.httpDuration.WithLabelValues(label, k.method),
		byCode:     r.m.httpRequests.MustCurryWith(prometheus.Labels{"route": label, "method": k.method}),
		spanName:   k.method + " " + label,
		methodAttr: semconv.HTTPRequestMethodKey.String(k.method),
		routeAttr:  semconv.HTTPRoute(label),
	}
	e.codes.Store(&map[int]prometheus.Counter{})
	next := make(map[routeKey]*routeEntry, len(routes)+1)
	for k, v := range routes {
		next[k] = v
	}
	next[k] = e
	r.routes.Store(&next)
	return e
}

// requests returns the request counter of status code.
func (e *routeEntry) requests(code int) prometheus.Counter {
	if c, ok := (*e.codes.Load())[code]; ok {
		return c
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	codes := *e.codes.Load()
	if c, ok := codes[code]; ok {
		return c
	}
	c := e.byCode.WithLabelValues(strconv.Itoa(code))
	next := make(map[int]prometheus.Counter, len(codes)+1)
	for k, v := range codes {
		next[k] = v
	}
	next[code] = c
	e.codes.Store(&next)
	return c
}

// routeLabel turns a ServeMux pattern into the http.route form: the path
// template without the method ("GET /v1/x/{id}" → "/v1/x/{id}").
func routeLabel(pattern string) string {
	if pattern == "" {
		return "_unmatched"
	}
	if i := strings.IndexByte(pattern, ' '); i > 0 {
		return strings.TrimLeft(pattern[i+1:], " \t")
	}
	return pattern
}

// normalMethod bounds the method label: unknown methods become _OTHER, as
// the OTel HTTP conventions say.
func normalMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}
