package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
)

// offsetErr is a validator error that reports its offset by method, as a
// validator given in Options.Validate may.
type offsetErr struct{ off int64 }

func (e offsetErr) Error() string     { return "unexpected byte" }
func (e offsetErr) ByteOffset() int64 { return e.off }

// TestBadInputStoresNothing: every rejected write is a 4xx naming the
// problem, and Docs never sees it.
func TestBadInputStoresNothing(t *testing.T) {
	const limit = 64
	deep := strings.Repeat("[", 5) + strings.Repeat("]", 5)
	cases := []struct {
		name     string
		path     string
		body     io.Reader
		clen     int64 // -1: chunked; 0: as the body says
		validate func([]byte) error
		status   int
		code     string
		msg      string // substring of the message
	}{
		{name: "bad tenant", path: docURL("UPPER", "k"), body: strings.NewReader("{}"), status: 400, code: "invalid", msg: `tenant "UPPER"`},
		{name: "long tenant", path: docURL(strings.Repeat("a", 64), "k"), body: strings.NewReader("{}"), status: 400, code: "invalid", msg: "longer than 63"},
		{name: "empty key", path: docURL(tenantA, ""), body: strings.NewReader("{}"), status: 400, code: "invalid", msg: "key"},
		{name: "control in key", path: docURL(tenantA, "a%01b"), body: strings.NewReader("{}"), status: 400, code: "invalid", msg: "control character"},
		{name: "NUL in key", path: docURL(tenantA, "a%00b"), body: strings.NewReader("{}"), status: 400, code: "invalid", msg: "NUL"},
		{name: "bad UTF-8 key", path: docURL(tenantA, "a%FFb"), body: strings.NewReader("{}"), status: 400, code: "invalid", msg: "UTF-8"},
		{name: "long key", path: docURL(tenantA, strings.Repeat("k", 1025)), body: strings.NewReader("{}"), status: 400, code: "invalid", msg: "longer than 1024"},
		{name: "empty body", path: docURL(tenantA, "k"), body: strings.NewReader(""), status: 400, code: "invalid", msg: "empty body"},
		{name: "empty chunked body", path: docURL(tenantA, "k"), body: strings.NewReader(""), clen: -1, status: 400, code: "invalid", msg: "empty body"},
		{name: "invalid JSON", path: docURL(tenantA, "k"), body: strings.NewReader(`{"a":1,}`), status: 400, code: "invalid", msg: "at byte 7"},
		{name: "truncated JSON", path: docURL(tenantA, "k"), body: strings.NewReader(`{"a":`), status: 400, code: "invalid", msg: "invalid JSON at byte"},
		{name: "two values", path: docURL(tenantA, "k"), body: strings.NewReader(`{} {}`), status: 400, code: "invalid", msg: "at byte"},
		{name: "too deep", path: docURL(tenantA, "k"), body: strings.NewReader(deep), status: 400, code: "invalid", msg: "invalid JSON at byte 4: nesting too deep"},
		{name: "validator offset", path: docURL(tenantA, "k"), body: strings.NewReader(`{}`), validate: func([]byte) error { return offsetErr{17} }, status: 400, code: "invalid", msg: "at byte 17: unexpected byte"},
		{name: "over limit by length", path: docURL(tenantA, "k"), body: strings.NewReader(`"` + strings.Repeat("x", limit) + `"`), status: 413, code: "too_large", msg: "64 bytes"},
		{name: "over limit chunked", path: docURL(tenantA, "k"), body: strings.NewReader(`"` + strings.Repeat("x", limit) + `"`), clen: -1, status: 413, code: "too_large"},
		{name: "length lies high", path: docURL(tenantA, "k"), body: strings.NewReader(`{}`), clen: 10 << 20, status: 413, code: "too_large"},
		{name: "short body", path: docURL(tenantA, "k"), body: strings.NewReader(`{}`), clen: 10, status: 400, code: "invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *server.Options) {
				o.MaxBodyBytes = limit
				o.MaxDepth = 4
				o.Validate = tc.validate
			})
			r := httptest.NewRequest("PUT", tc.path, tc.body)
			r.Header.Set("Authorization", "Bearer "+e.tokA)
			switch {
			case tc.clen == -1:
				r.ContentLength = -1
				r.Body = io.NopCloser(r.Body) // hide the length
			case tc.clen > 0:
				r.ContentLength = tc.clen
			}
			w := httptest.NewRecorder()
			e.srv.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			apiErr := decodeError(t, w)
			if apiErr.Error.Code != tc.code || !strings.Contains(apiErr.Error.Message, tc.msg) {
				t.Errorf("error %+v, want code %q message containing %q", apiErr.Error, tc.code, tc.msg)
			}
			if n := e.mem.Writes(); n != 0 {
				t.Errorf("Docs saw %d writes, want 0 (calls %v)", n, e.mem.Calls())
			}
		})
	}
}

// TestOversizeRefusedBeforeReading: a Content-Length over the limit is
// refused without reading a byte of the body.
func TestOversizeRefusedBeforeReading(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.MaxBodyBytes = 10 })
	body := &countingReader{}
	r := httptest.NewRequest("PUT", docURL(tenantA, "k"), body)
	r.ContentLength = 1 << 30
	r.Header.Set("Authorization", "Bearer "+e.tokA)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	if w.Code != 413 || body.n != 0 {
		t.Errorf("status %d after reading %d bytes; want 413 after 0", w.Code, body.n)
	}
}

type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) { c.n += len(p); return len(p), nil }

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", 65)
	for _, tc := range []struct {
		name, sent string
		echoed     bool
	}{
		{"accepted", "abc-123_XYZ.9:z", true},
		{"UUID", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"max length", strings.Repeat("y", 64), true},
		{"too long", long, false},
		{"space", "a b", false},
		{"non-ASCII", "idé", false},
		{"quote", `a"b`, false},
		{"slash and equals", "a/b=", false},
		{"none", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.sent != "" {
				hdr = []string{"X-Request-ID", tc.sent}
			}
			// An error answer and a success both echo it.
			for _, path := range []string{"/livez", docURL(tenantA, "missing")} {
				w := e.do(t, req{method: "GET", path: path, token: e.tokA, hdr: hdr})
				got := w.Header().Get("X-Request-ID")
				if tc.echoed && got != tc.sent {
					t.Errorf("%s: X-Request-ID %q, want %q", path, got, tc.sent)
				}
				if !tc.echoed && (got == "" || got == tc.sent) {
					t.Errorf("%s: X-Request-ID %q, want a generated one", path, got)
				}
			}
		})
	}
	// Generated ids are unique.
	seen := map[string]bool{}
	for range 1000 {
		id := e.do(t, req{method: "GET", path: "/livez"}).Header().Get("X-Request-ID")
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

// TestRequestContext: Docs sees the request id, tenant and op in ctx.
func TestRequestContext(t *testing.T) {
	var info []string
	m := &memDocs{get: func(ctx context.Context, tenant, key string) (server.Doc, error) {
		i := reqInfo(ctx)
		info = []string{i.ID, i.Tenant, i.Op}
		return server.Doc{}, fault.New(fault.NotFound, fault.Context{}, "no")
	}}
	e := newEnv(t, func(o *server.Options) { o.Docs = m })
	e.do(t, req{method: "HEAD", path: docURL(tenantA, "k"), token: e.tokA, hdr: []string{"X-Request-ID", "rid-1"}})
	if strings.Join(info, " ") != "rid-1 acme doc.head" {
		t.Errorf("ctx info = %v", info)
	}
}

// TestErrorStatuses maps Docs errors to statuses, codes and headers.
func TestErrorStatuses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
		msg        string
	}{
		{"transient", fault.New(fault.Transient, fault.Context{}, "store busy"), 503, "transient", "1", "store busy"},
		{"exhausted with hint", exhausted(2500 * time.Millisecond), 503, "exhausted", "3", "Service Unavailable"},
		{"corruption", fault.New(fault.Corruption, fault.Context{}, ""), 502, "corruption", "", "Bad Gateway"},
		{"unknown hides cause", errors.New("open /secret/path: permission"), 500, "unknown", "", "Internal Server Error"},
		{"deadline", context.DeadlineExceeded, 503, "transient", "1", "Service Unavailable"},
		{"conflict", fault.New(fault.Conflict, fault.Context{}, "siblings"), 409, "conflict", "", "siblings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &memDocs{get: func(context.Context, string, string) (server.Doc, error) { return server.Doc{}, tc.err }}
			e := newEnv(t, func(o *server.Options) { o.Docs = m })
			w := e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: e.tokA})
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			apiErr := decodeError(t, w)
			if apiErr.Error.Code != tc.code || apiErr.Error.Message != tc.msg {
				t.Errorf("error %+v, want %q %q", apiErr.Error, tc.code, tc.msg)
			}
			if got := w.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}
		})
	}
}

// TestFailuresLoggedOnce: one line per request; failed ones at Info or
// Error with class, op, tenant and request id; successes at Debug. A 503
// of class exhausted from the documents (a disk nearly full) is the node's
// trouble, at Error; only its deliberate answers are at Info
// (TestShedLoggedAtInfo).
func TestFailuresLoggedOnce(t *testing.T) {
	m := &memDocs{}
	e := newEnv(t, func(o *server.Options) { o.Docs = m })
	e.put(t, tenantA, "k", "{}")
	e.do(t, req{method: "GET", path: docURL(tenantA, "missing"), token: e.tokA, hdr: []string{"X-Request-ID", "r404"}})
	m.get = func(context.Context, string, string) (server.Doc, error) {
		return server.Doc{}, fault.New(fault.Transient, fault.Context{Key: "k"}, "disk slow")
	}
	e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: e.tokA, hdr: []string{"X-Request-ID", "r503"}})
	m.get = func(context.Context, string, string) (server.Doc, error) {
		return server.Doc{}, fault.New(fault.Exhausted, fault.Context{Key: "k"}, "disk nearly full")
	}
	e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: e.tokA, hdr: []string{"X-Request-ID", "full"}})
	recs := e.logs.records(t)
	if len(recs) != 4 {
		t.Fatalf("%d log lines, want 4: %v", len(recs), recs)
	}
	want := []map[string]any{
		{"level": "DEBUG", "msg": "request", "status": 201.0, "op": "doc.put"},
		{"level": "INFO", "msg": "request failed", "status": 404.0, "class": "not_found", "op": "doc.get", "tenant": "acme", "request_id": "r404"},
		{"level": "ERROR", "msg": "request failed", "status": 503.0, "class": "transient", "op": "doc.get", "tenant": "acme", "request_id": "r503", "key": "k"},
		{"level": "ERROR", "msg": "request failed", "status": 503.0, "class": "exhausted", "op": "doc.get", "tenant": "acme", "request_id": "full"},
	}
	for i, w := range want {
		for k, v := range w {
			if recs[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, recs[i][k], v, recs[i])
			}
		}
	}
}

// TestShedLoggedAtInfo: a request the admission middleware sheds itself
// (the node at --max-in-flight) is logged at Info with class exhausted,
// where its 503 was an Error line with no class.
func TestShedLoggedAtInfo(t *testing.T) {
	l, err := resilience.NewLimiter(resilience.LimiterConfig{MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	in, release := make(chan struct{}), make(chan struct{})
	m := &memDocs{get: func(context.Context, string, string) (server.Doc, error) {
		close(in)
		<-release
		return server.Doc{}, fault.New(fault.NotFound, fault.Context{}, "no document")
	}}
	e := newEnv(t, func(o *server.Options) { o.Admission.Limiter, o.Docs = l, m })
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.do(t, req{method: "GET", path: docURL(tenantA, "held"), token: e.tokA})
	}()
	<-in // the node's one place is taken
	w := e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: e.tokA, hdr: []string{"X-Request-ID", "shed"}})
	close(release)
	<-done
	if w.Code != 503 {
		t.Fatalf("past --max-in-flight: %d, want 503", w.Code)
	}
	found := false
	for _, rec := range e.logs.records(t) {
		if rec["request_id"] != "shed" {
			continue
		}
		found = true
		if rec["level"] != "INFO" || rec["class"] != "exhausted" || rec["status"] != 503.0 {
			t.Fatalf("the shed request's line: %v; want INFO, class exhausted, status 503", rec)
		}
	}
	if !found {
		t.Fatal("the shed request was not logged")
	}
}

// TestShedLinesThinned: a flood of shed answers — a tenant over its rate,
// a client past the failed-authentication budget — gives one Info line
// per tenant and status a period, the rest at Debug, so a client cannot
// fill the log at its sending rate.
func TestShedLinesThinned(t *testing.T) {
	l, err := resilience.NewLimiter(resilience.LimiterConfig{TenantRate: 0.001, TenantBurst: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *server.Options) {
		o.Admission.Limiter = l
		o.Admission.AuthFailed = func() (bool, time.Duration) { return false, time.Second }
	})
	for range 50 {
		e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: e.tokA})
		e.do(t, req{method: "GET", path: docURL(tenantB, "k"), token: "wrong"})
	}
	info := map[string]int{}
	for _, rec := range e.logs.records(t) {
		if rec["level"] == "INFO" {
			info[fmt.Sprint(rec["status"], " ", rec["tenant"])]++
		}
	}
	want := map[string]int{"404 acme": 1, "429 acme": 1, "429 beta": 1}
	if !maps.Equal(info, want) {
		t.Errorf("Info lines by status and tenant: %v, want %v (the rest at Debug)", info, want)
	}
}

// TestPanicIsA500: a panicking Docs gives a JSON 500, logged with the stack.
func TestPanicIsA500(t *testing.T) {
	m := &memDocs{get: func(context.Context, string, string) (server.Doc, error) { panic("boom") }}
	e := newEnv(t, func(o *server.Options) { o.Docs = m })
	w := e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: e.tokA})
	if w.Code != 500 || decodeError(t, w).Error.Code != "unknown" {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	recs := e.logs.records(t)
	if len(recs) != 1 || !strings.Contains(recs[0]["error"].(string), "panic: boom") {
		t.Errorf("logs %v", recs)
	}
}

func TestHTTPServerTimeouts(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.Timeouts.Read = 7 * time.Second })
	hs := e.srv.HTTPServer("127.0.0.1:0")
	if hs.ReadHeaderTimeout != 5*time.Second || hs.ReadTimeout != 7*time.Second ||
		hs.WriteTimeout != 30*time.Second || hs.IdleTimeout != 120*time.Second ||
		hs.MaxHeaderBytes != 64<<10 || hs.Handler != http.Handler(e.srv) || hs.ErrorLog == nil {
		t.Errorf("http.Server %+v", hs)
	}
}

// timeoutReader fails like a connection whose read deadline passed.
type timeoutReader struct{}

func (timeoutReader) Read([]byte) (int, error) { return 0, timeoutErr{} }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestBodyReadTimeout: a body that does not arrive in time is a 408 and
// stores nothing, on every route that reads a document.
func TestBodyReadTimeout(t *testing.T) {
	e := newEnv(t)
	for _, route := range []struct{ method, url string }{
		{"PUT", docURL(tenantA, "k")},
		{"POST", "/v1/tenants/" + tenantA + "/conflicts/k/resolve"},
	} {
		r := httptest.NewRequest(route.method, route.url, timeoutReader{})
		r.ContentLength = 10
		r.Header.Set("Authorization", "Bearer "+e.tokA)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code != 408 || decodeError(t, w).Error.Code != "timeout" || e.mem.Writes() != 0 {
			t.Errorf("%s %s: %d %s, writes %d", route.method, route.url, w.Code, w.Body, e.mem.Writes())
		}
	}
}
