package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnstore/cairn/client"
	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// These tests check the spans, logs and metrics of PUT, GET (cache miss and
// hit) and ingest, served over loopback by node.Start with the telemetry it
// wires (middleware order, store and cache hooks, admin listener).

// Route names as the server span and the http.route label show them.
const (
	docRoute    = "/v1/tenants/{tenant}/docs/{key...}"
	ingestRoute = "/v1/tenants/{tenant}/ingest"
)

// tracedNode is a node on loopback whose spans go to an in-memory exporter
// and whose JSON log, at debug (access log included), goes to a buffer.
type tracedNode struct {
	*Node
	url   string
	token string // tenant acme's
	spans *tracetest.InMemoryExporter
	logs  *proctest.SyncBuffer
	hc    *http.Client
}

// startTracedNode starts a node on dir. Nodes of one test share token (and
// so auth) so that a restart on the same directory serves the same tenant.
func startTracedNode(t *testing.T, dir, token string, hash [32]byte) *tracedNode {
	t.Helper()
	tn := &tracedNode{token: token, spans: tracetest.NewInMemoryExporter(), logs: &proctest.SyncBuffer{},
		hc: &http.Client{Transport: &http.Transport{}}}
	log, err := telemetry.NewLogger(tn.logs, "json", slog.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(context.Background(), Config{
		DataDir: dir, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", RespListen: "127.0.0.1:0", NodeID: "n1",
		Durability: store.Sync, Logger: log,
		Auth:  server.Auth{Tenants: map[string][][32]byte{"acme": {hash}}},
		Trace: telemetry.Config{SpanExporter: tn.spans, NoGlobal: true, Version: "v-test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tn.Node, tn.url = n, "http://"+n.Addr()
	t.Cleanup(func() { tn.stop(t) })
	return tn
}

func (tn *tracedNode) stop(t *testing.T) {
	if tn.Node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tn.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	tn.hc.CloseIdleConnections()
	tn.Node = nil
}

// do sends an authenticated request for tenant acme's path (under
// /v1/tenants/acme/) with header pairs hdr and returns status and body.
func (tn *tracedNode) do(t *testing.T, method, path, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, tn.url+"/v1/tenants/acme/"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tn.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	code, _, b := send(t, tn.hc, req)
	return code, b
}

// flush returns the spans ended so far and forgets them. Every span of a
// request has ended before its response leaves: the middleware ends the
// server span when the handler returns, and net/http sends a small
// response only after that.
func (tn *tracedNode) flush(t *testing.T) tracetest.SpanStubs {
	t.Helper()
	if err := tn.tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := tn.spans.GetSpans()
	tn.spans.Reset()
	return spans
}

func newToken(t *testing.T) (string, [32]byte) {
	t.Helper()
	tok, hash, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok, hash
}

// A traceparent of a sampled remote caller.
const (
	callerTrace     = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan      = "00f067aa0ba902b7"
	callerParent    = "00-" + callerTrace + "-" + callerSpan + "-01"
	unsampledParent = "00-" + callerTrace + "-" + callerSpan + "-00"
)

// wantSpan is a span expected in a tree: its name, attributes that must
// have these values, and its children (exactly these names).
type wantSpan struct {
	name     string
	attrs    map[string]any
	children []wantSpan
}

// TestNodeSpans: each request produces the expected span tree, with the
// server span named by route and the child spans of the docs service and
// the ingest handler; an incoming traceparent is continued.
func TestNodeSpans(t *testing.T) {
	dir := t.TempDir()
	tok, hash := newToken(t)
	// Write k1 with one node, read it with a fresh one: its cache is empty,
	// so the first GET misses.
	seed := startTracedNode(t, dir, tok, hash)
	if code, _ := seed.do(t, "PUT", "docs/k1", `{"v":1}`); code != http.StatusCreated {
		t.Fatalf("seed PUT: %d", code)
	}
	seed.stop(t)
	tn := startTracedNode(t, dir, tok, hash)
	tn.flush(t) // nothing yet, but start clean

	ingestBody := `{"id":"a","v":1}` + "\n" + `{"id":"b","v":2}` + "\n" + `{"id":` + "\n" + `{"id":"c"}` + "\n"
	for _, tc := range []struct {
		name         string
		method, path string
		body         string
		traceparent  string
		code         int
		want         wantSpan
	}{
		{"get miss, continued", "GET", "docs/k1", "", callerParent, 200, wantSpan{
			"GET " + docRoute, map[string]any{"cairn.op": "doc.get", "http.response.status_code": int64(200)},
			[]wantSpan{
				{"cache.get", map[string]any{"cairn.cache.hit": false}, nil},
				{"store.get", nil, nil},
			}}},
		{"get hit", "GET", "docs/k1", "", "", 200, wantSpan{
			"GET " + docRoute, map[string]any{"cairn.op": "doc.get", "http.response.status_code": int64(200)},
			[]wantSpan{{"cache.get", map[string]any{"cairn.cache.hit": true}, nil}}}},
		{"put", "PUT", "docs/k2", `{"v":2}`, "", 201, wantSpan{
			"PUT " + docRoute, map[string]any{"cairn.op": "doc.put", "http.response.status_code": int64(201)},
			[]wantSpan{{"store.commit", map[string]any{"cairn.store.group_size": int64(1)}, nil}}}},
		{"get missing", "GET", "docs/nope", "", "", 404, wantSpan{
			"GET " + docRoute, map[string]any{"http.response.status_code": int64(404)},
			[]wantSpan{{"cache.get", map[string]any{"cairn.cache.hit": false}, nil}, {"store.get", nil, nil}}}},
		{"ingest", "POST", "ingest?key_field=id", ingestBody, callerParent, 200, wantSpan{
			"POST " + ingestRoute, map[string]any{"cairn.op": "ingest", "http.response.status_code": int64(200)},
			[]wantSpan{{"ingest.batch", map[string]any{
				"cairn.ingest.batch": int64(0), "cairn.ingest.records": int64(3),
				"cairn.ingest.accepted": int64(3), "cairn.store.group_size": int64(3),
			}, nil}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqID := "req-" + strings.NewReplacer(" ", "-", ",", "").Replace(tc.name) // a sane X-Request-ID
			hdr := []string{"X-Request-Id", reqID, "Content-Type", "application/x-ndjson"}
			if tc.traceparent != "" {
				hdr = append(hdr, "traceparent", tc.traceparent)
			}
			if code, body := tn.do(t, tc.method, tc.path, tc.body, hdr...); code != tc.code {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.code)
			}
			spans := tn.flush(t)
			root := checkTree(t, spans, tc.want)
			a := attrMap(root)
			for k, want := range map[string]any{"cairn.request_id": reqID, "cairn.tenant": "acme",
				"http.route": strings.SplitN(tc.want.name, " ", 2)[1], "http.request.method": tc.method} {
				if a[k] != want {
					t.Errorf("server span %s = %v, want %v", k, a[k], want)
				}
			}
			if root.SpanKind != trace.SpanKindServer {
				t.Errorf("server span kind %v", root.SpanKind)
			}
			if tc.traceparent == "" {
				if root.Parent.IsValid() {
					t.Errorf("server span has parent %v, want a new root", root.Parent)
				}
				return
			}
			if got := root.SpanContext.TraceID().String(); got != callerTrace {
				t.Errorf("trace id %s, want the caller's %s", got, callerTrace)
			}
			if got := root.Parent.SpanID().String(); got != callerSpan || !root.Parent.IsRemote() {
				t.Errorf("parent %s (remote %v), want the caller's span %s, remote", got, root.Parent.IsRemote(), callerSpan)
			}
		})
	}

	t.Run("unsampled parent", func(t *testing.T) {
		// Parent-based sampling: the caller decided not to sample.
		tn.do(t, "GET", "docs/k1", "", "traceparent", unsampledParent)
		if spans := tn.flush(t); len(spans) != 0 {
			t.Errorf("%d spans exported for an unsampled parent: %v", len(spans), spanNames(spans))
		}
	})
}

// TestRESPSpans: a RESP command's span has the store's and the cache's
// spans as children, as an HTTP request's has.
func TestRESPSpans(t *testing.T) {
	tok, hash := newToken(t)
	tn := startTracedNode(t, t.TempDir(), tok, hash)
	c, err := net.Dial("tcp", tn.RESPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	send := func(args ...string) string {
		t.Helper()
		fmt.Fprintf(c, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(c, "$%d\r\n%s\r\n", len(a), a)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
			body, _ := r.ReadString('\n')
			line += body
		}
		return line
	}
	if got := send("AUTH", "acme", tok); got != "+OK\r\n" {
		t.Fatalf("AUTH: %q", got)
	}
	tn.flush(t)
	for _, tc := range []struct {
		args []string
		want wantSpan
	}{
		{[]string{"SET", "k", `{"v":1}`}, wantSpan{"RESP SET", map[string]any{"cairn.op": "SET"},
			[]wantSpan{{"store.commit", map[string]any{"cairn.store.group_size": int64(1)}, nil}}}},
		{[]string{"GET", "k"}, wantSpan{"RESP GET", map[string]any{"cairn.op": "GET"},
			[]wantSpan{{"cache.get", map[string]any{"cairn.cache.hit": true}, nil}}}},
	} {
		if got := send(tc.args...); strings.HasPrefix(got, "-") {
			t.Fatalf("%v: %q", tc.args, got)
		}
		checkTree(t, tn.flush(t), tc.want)
	}
}

// checkTree finds the one root of spans (a span whose parent is not among
// them), checks it and its descendants against want, and returns it.
func checkTree(t *testing.T, spans tracetest.SpanStubs, want wantSpan) tracetest.SpanStub {
	t.Helper()
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext.SpanID()] = true
	}
	var roots tracetest.SpanStubs
	for _, s := range spans {
		if !ids[s.Parent.SpanID()] {
			roots = append(roots, s)
		}
	}
	if len(roots) != 1 {
		t.Fatalf("%d roots among spans %v, want 1", len(roots), spanNames(spans))
	}
	checkSpan(t, spans, roots[0], want)
	return roots[0]
}

func checkSpan(t *testing.T, all tracetest.SpanStubs, s tracetest.SpanStub, want wantSpan) {
	t.Helper()
	if s.Name != want.name {
		t.Errorf("span %q, want %q", s.Name, want.name)
	}
	a := attrMap(s)
	for k, v := range want.attrs {
		if a[k] != v {
			t.Errorf("span %s: %s = %v (%T), want %v (%T)", s.Name, k, a[k], a[k], v, v)
		}
	}
	if s.SpanContext.TraceID() != all[0].SpanContext.TraceID() {
		t.Errorf("span %s is in trace %s, not %s", s.Name, s.SpanContext.TraceID(), all[0].SpanContext.TraceID())
	}
	var kids tracetest.SpanStubs
	for _, c := range all {
		if c.Parent.SpanID() == s.SpanContext.SpanID() {
			kids = append(kids, c)
		}
	}
	var got, wantNames []string
	for _, k := range kids {
		got = append(got, k.Name)
	}
	for _, w := range want.children {
		wantNames = append(wantNames, w.name)
	}
	slices.Sort(got)
	slices.Sort(wantNames)
	if !slices.Equal(got, wantNames) {
		t.Errorf("children of %s: %q, want %q", s.Name, got, wantNames)
		return
	}
	for _, w := range want.children {
		for _, k := range kids {
			if k.Name == w.name {
				checkSpan(t, all, k, w)
				break
			}
		}
	}
}

func attrMap(s tracetest.SpanStub) map[string]any {
	m := map[string]any{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

func spanNames(spans tracetest.SpanStubs) []string {
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	return names
}

// TestClientPropagatesTrace: a Go client call made inside a span, with
// client.WithTraceContext, is served by a server span in the caller's
// trace, a child of the caller's span; without the option it is not.
func TestClientPropagatesTrace(t *testing.T) {
	tok, hash := newToken(t)
	tn := startTracedNode(t, t.TempDir(), tok, hash)
	caller := sdktrace.NewTracerProvider() // the application's own SDK
	defer caller.Shutdown(context.Background())

	for _, tc := range []struct {
		name   string
		opts   []client.Option
		joined bool
	}{
		{"WithTraceContext", []client.Option{client.WithTraceContext()}, true},
		{"no option", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			opts := append([]client.Option{client.WithHTTPClient(&http.Client{Transport: tr})}, tc.opts...)
			c := client.New(tn.url, tok, opts...)
			ctx, span := caller.Tracer("app").Start(context.Background(), "app.work")
			if _, err := c.Put(ctx, "acme", "k", []byte(`{"v":1}`)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(ctx, "acme", "k"); err != nil {
				t.Fatal(err)
			}
			span.End()
			var servers int
			for _, s := range tn.flush(t) {
				if s.SpanKind != trace.SpanKindServer {
					continue
				}
				servers++
				joined := s.SpanContext.TraceID() == span.SpanContext().TraceID() &&
					s.Parent.SpanID() == span.SpanContext().SpanID()
				if joined != tc.joined {
					t.Errorf("server span %s: trace %s parent %s; caller trace %s span %s; joined %v, want %v",
						s.Name, s.SpanContext.TraceID(), s.Parent.SpanID(),
						span.SpanContext().TraceID(), span.SpanContext().SpanID(), joined, tc.joined)
				}
			}
			if servers != 2 {
				t.Errorf("%d server spans, want 2 (PUT and GET)", servers)
			}
		})
	}
}

// TestNodeLogsCarryTrace: every line logged during a traced request — the
// access log line at debug, a failed request's line — carries its server
// span's trace_id and span_id, its request_id and tenant, each key once.
func TestNodeLogsCarryTrace(t *testing.T) {
	tok, hash := newToken(t)
	tn := startTracedNode(t, t.TempDir(), tok, hash)
	tn.do(t, "PUT", "docs/k1", `{"v":1}`)
	tn.flush(t)
	tn.logs.Reset()

	requests := []struct {
		id, method, path, body, msg string
	}{
		{"log-get", "GET", "docs/k1", "", "request"},             // access log, debug
		{"log-miss", "GET", "docs/nope", "", "request failed"},   // 404, info
		{"log-bad", "PUT", "docs/k2", `{"v":`, "request failed"}, // 400, info
		{"log-ingest", "POST", "ingest?key_field=id", `{"id":"x"}`, "request"},
	}
	for _, r := range requests {
		tn.do(t, r.method, r.path, r.body, "X-Request-Id", r.id, "traceparent", callerParent,
			"Content-Type", "application/x-ndjson")
	}
	servers := map[string]tracetest.SpanStub{} // by request id
	for _, s := range tn.flush(t) {
		if s.SpanKind == trace.SpanKindServer {
			servers[attrMap(s)["cairn.request_id"].(string)] = s
		}
	}

	lines := map[string][]map[string]any{} // by request id
	for _, raw := range strings.Split(strings.TrimSpace(tn.logs.String()), "\n") {
		var line map[string]any
		if err := json.Unmarshal([]byte(raw), &line); err != nil {
			t.Fatalf("log line %q: %v", raw, err)
		}
		for _, k := range []string{telemetry.LogTraceID, telemetry.LogSpanID, telemetry.LogRequestID, telemetry.LogTenant} {
			if n := strings.Count(raw, `"`+k+`":`); n > 1 {
				t.Errorf("key %s %d times in %s", k, n, raw)
			}
		}
		id, _ := line[telemetry.LogRequestID].(string)
		if id == "" {
			if _, ok := line[telemetry.LogTraceID]; ok {
				t.Errorf("line with a trace_id but no request_id: %s", raw)
			}
			continue
		}
		lines[id] = append(lines[id], line)
	}
	for _, r := range requests {
		span, ok := servers[r.id]
		if !ok {
			t.Errorf("request %s: no server span", r.id)
			continue
		}
		if len(lines[r.id]) == 0 {
			t.Errorf("request %s: no log line", r.id)
		}
		var msgs []string
		for _, l := range lines[r.id] {
			msgs = append(msgs, l["msg"].(string))
			for k, want := range map[string]string{
				telemetry.LogTraceID: callerTrace,
				telemetry.LogSpanID:  span.SpanContext.SpanID().String(),
				telemetry.LogTenant:  "acme",
			} {
				if l[k] != want {
					t.Errorf("request %s, line %v: %s = %v, want %v", r.id, l, k, l[k], want)
				}
			}
		}
		if !slices.Contains(msgs, r.msg) {
			t.Errorf("request %s: lines %q, want one %q", r.id, msgs, r.msg)
		}
	}
}

// TestNodeMetrics scrapes the admin listener's /metrics after traffic: the
// RED series of the routes, the cache, store and ingest series moved; the
// registry passes promlint; no label value is a tenant or a key.
func TestNodeMetrics(t *testing.T) {
	tok, hash := newToken(t)
	tn := startTracedNode(t, t.TempDir(), tok, hash)
	tn.do(t, "PUT", "docs/k1", `{"v":1}`) // 201, one commit
	tn.do(t, "GET", "docs/k1", "")        // 200, cache hit (the commit filled it)
	tn.do(t, "GET", "docs/k1", "")        // 200, hit
	tn.do(t, "GET", "docs/missing", "")   // 404, miss
	ingest := `{"id":"a"}` + "\n" + `{"id":"b"}` + "\n" + "{bad\n"
	tn.do(t, "POST", "ingest?key_field=id", ingest, "Content-Type", "application/x-ndjson")
	tn.do(t, "PATCH", "docs/k1", `{}`) // 405: no route serves the method
	tn.do(t, "GET", "ingest", "")      // 405 of a route without a method-less pattern
	// /v1/tenants/Bad/docs: 400, a tenant name the node refuses.
	for _, path := range []string{"/nothing/here", "/livez", "/readyz", "/v1/tenants/Bad/docs"} {
		res, err := http.Get("http://" + tn.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}

	raw := scrape(t, "http://"+tn.AdminAddr()+"/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	get := func(name string, labels ...string) float64 {
		t.Helper()
		v, ok := sample(fams[name], labels...)
		if !ok {
			t.Errorf("no series %s%v in /metrics", name, labels)
		}
		return v
	}
	for _, c := range []struct {
		name            string
		labels          []string
		atLeast, atMost float64
	}{
		{"cairn_http_requests_total", []string{"route", docRoute, "method", "GET", "code", "200"}, 2, 2},
		{"cairn_http_requests_total", []string{"route", docRoute, "method", "GET", "code", "404"}, 1, 1},
		{"cairn_http_requests_total", []string{"route", docRoute, "method", "PUT", "code", "201"}, 1, 1},
		{"cairn_http_requests_total", []string{"route", ingestRoute, "method", "POST", "code", "200"}, 1, 1},
		{"cairn_http_requests_total", []string{"route", docRoute, "method", "PATCH", "code", "405"}, 1, 1},
		{"cairn_http_requests_total", []string{"route", ingestRoute, "method", "GET", "code", "405"}, 1, 1},
		{"cairn_http_requests_total", []string{"route", "/v1/tenants/{tenant}/docs", "method", "GET", "code", "400"}, 1, 1},
		{"cairn_http_requests_total", []string{"route", "/", "method", "GET", "code", "404"}, 1, 1},
		{"cairn_http_request_duration_seconds", []string{"route", docRoute, "method", "GET"}, 3, 3}, // count
		{"cairn_http_requests_in_flight", []string{"route", docRoute}, 0, 0},
		{"cairn_cache_hits_total", nil, 2, 2},
		{"cairn_cache_misses_total", nil, 1, 1},
		{"cairn_store_commit_duration_seconds", nil, 2, 2}, // count: the PUT's commit and the ingest batch's
		{"cairn_store_commit_batch_size", nil, 2, 2},
		{"cairn_ingest_records_total", nil, 2, 2},
		{"cairn_ingest_malformed_total", nil, 1, 1},
		{"cairn_ingest_bytes_total", nil, float64(len(ingest)), float64(len(ingest))},
		{"cairn_build_info", []string{"version", "v-test"}, 1, 1},
	} {
		if v := get(c.name, c.labels...); v < c.atLeast || v > c.atMost {
			t.Errorf("%s%v = %v, want in [%v, %v]", c.name, c.labels, v, c.atLeast, c.atMost)
		}
	}
	for _, route := range []string{"/livez", "/readyz"} {
		if _, ok := sample(fams["cairn_http_requests_total"], "route", route); ok {
			t.Errorf("%s counted in cairn_http_requests_total: health checks are not measured", route)
		}
	}
	if sum := histSum(fams["cairn_store_commit_batch_size"]); sum != 3 {
		t.Errorf("cairn_store_commit_batch_size sum = %v, want 3 (1 put + 2 ingested)", sum)
	}

	// No tenant and no key in any label.
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v := lp.GetValue(); v == "acme" || v == "k1" || v == "missing" || strings.Contains(v, "/acme/") {
					t.Errorf("%s has label %s=%q", name, lp.GetName(), v)
				}
			}
		}
	}
	problems, err := testutil.GatherAndLint(tn.tel.Metrics.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	// Per-tenant figures are on the admin JSON endpoint instead.
	var stats struct {
		Tenants map[string]struct {
			Requests      int64 `json:"requests"`
			ClientErrors  int64 `json:"client_errors"`
			IngestRecords int64 `json:"ingest_records"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal([]byte(scrape(t, "http://"+tn.AdminAddr()+"/v1/admin/tenants")), &stats); err != nil {
		t.Fatal(err)
	}
	if a := stats.Tenants["acme"]; a.Requests != 5 || a.ClientErrors != 1 || a.IngestRecords != 2 {
		t.Errorf("tenant stats for acme = %+v, want 5 requests, 1 client error, 2 ingested records", a)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	http.DefaultClient.CloseIdleConnections()
	return string(b)
}

// sample returns the value of the series of f whose labels include the
// name/value pairs: a counter's or gauge's value, a histogram's count.
func sample(f *dto.MetricFamily, labels ...string) (float64, bool) {
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func histSum(f *dto.MetricFamily) float64 {
	if f == nil || len(f.GetMetric()) == 0 || f.GetMetric()[0].Histogram == nil {
		return -1
	}
	return f.GetMetric()[0].Histogram.GetSampleSum()
}
