package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"

	"github.com/cairnstore/cairn/internal/deadline"
)

// oneByte is a body that sends one byte and ends, whatever its request's
// Content-Length promised.
type oneByte struct{ done bool }

func (b *oneByte) Read(p []byte) (int, error) {
	if b.done || len(p) == 0 {
		return 0, io.EOF
	}
	b.done = true
	p[0] = '{'
	return 1, nil
}

// TestBodyMemoryFollowsArrival: a PUT that declares 1 MiB and sends one
// byte allocates about what arrived, not what was declared.
func TestBodyMemoryFollowsArrival(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.MaxBodyBytes = 4 << 20 })
	const n = 32
	reqs := make([]*http.Request, n)
	for i := range reqs {
		r := httptest.NewRequest("PUT", docURL(tenantA, "k"), &oneByte{})
		r.ContentLength = 1 << 20
		r.Header.Set("Authorization", "Bearer "+e.tokA)
		reqs[i] = r
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, r := range reqs {
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code != 400 {
			t.Fatalf("status %d %s, want 400 (body shorter than declared)", w.Code, w.Body)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 64<<10 {
		t.Errorf("each request allocated %d bytes for a 1-byte body declared as 1 MiB; want under 64 KiB", per)
	}
	if e.mem.Writes() != 0 {
		t.Errorf("%d writes", e.mem.Writes())
	}
}

// TestBodyReadWhole: bodies of every size around the growth steps arrive
// whole, declared or chunked.
func TestBodyReadWhole(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.MaxBodyBytes = 1 << 20 })
	for _, size := range []int{2, 4095, 4096, 4097, 10000, 65536, 1 << 20} {
		for _, chunked := range []bool{false, true} {
			body := `"` + strings.Repeat("x", size-2) + `"`
			r := httptest.NewRequest("PUT", docURL(tenantA, fmt.Sprint(size)), strings.NewReader(body))
			if chunked {
				r.ContentLength = -1
				r.Body = io.NopCloser(r.Body)
			}
			r.Header.Set("Authorization", "Bearer "+e.tokA)
			w := httptest.NewRecorder()
			e.srv.ServeHTTP(w, r)
			if w.Code != 201 && w.Code != 200 {
				t.Fatalf("size %d chunked %v: %d %s", size, chunked, w.Code, w.Body)
			}
			d, err := e.mem.Get(context.Background(), tenantA, fmt.Sprint(size))
			if err != nil || string(d.Body) != body {
				t.Fatalf("size %d chunked %v: stored %d bytes, %v", size, chunked, len(d.Body), err)
			}
		}
	}
}

func gzipped(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	io.WriteString(zw, s)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestContentEncoding: gzip bodies are decoded (bounded by MaxBodyBytes
// when decoded), identity is no coding, and any other coding is a 415
// naming it, with Accept-Encoding; nothing is stored on a refusal.
func TestContentEncoding(t *testing.T) {
	const limit = 1024
	doc := `{"a":1}`
	bomb := gzipped(t, `"`+strings.Repeat("x", 100*limit)+`"`)
	for _, tc := range []struct {
		name   string
		coding []string // Content-Encoding lines
		body   string
		status int
		msg    string // substring of the error message
	}{
		{name: "none", body: doc, status: 201},
		{name: "identity", coding: []string{"identity"}, body: doc, status: 201},
		{name: "gzip", coding: []string{"gzip"}, body: gzipped(t, doc), status: 201},
		{name: "GZIP", coding: []string{"GZIP"}, body: gzipped(t, doc), status: 201},
		{name: "x-gzip", coding: []string{"x-gzip"}, body: gzipped(t, doc), status: 201},
		{name: "identity and gzip", coding: []string{"identity, gzip"}, body: gzipped(t, doc), status: 201},
		{name: "inflates past the limit", coding: []string{"gzip"}, body: bomb, status: 413, msg: "1024 bytes"},
		{name: "not gzip", coding: []string{"gzip"}, body: `{"a":"plain JSON, not gzip"}`, status: 400, msg: "not a whole gzip stream (bad header: not gzip data"},
		{name: "gzip cut short", coding: []string{"gzip"}, body: gzipped(t, doc)[:15], status: 400, msg: "not a whole gzip stream"},
		{name: "br", coding: []string{"br"}, body: doc, status: 415, msg: `Content-Encoding "br": not supported`},
		{name: "deflate", coding: []string{"deflate"}, body: doc, status: 415, msg: `"deflate"`},
		{name: "unknown", coding: []string{"zzz"}, body: doc, status: 415, msg: `"zzz"`},
		{name: "two codings", coding: []string{"gzip, gzip"}, body: gzipped(t, gzipped(t, doc)), status: 415, msg: "more than one coding"},
		{name: "two lines", coding: []string{"gzip", "br"}, body: doc, status: 415, msg: `"gzip, br": more than one coding`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *server.Options) { o.MaxBodyBytes = limit })
			hdr := []string{}
			for _, c := range tc.coding {
				hdr = append(hdr, "Content-Encoding", c)
			}
			w := e.do(t, req{method: "PUT", path: docURL(tenantA, "k"), token: e.tokA, body: tc.body, hdr: hdr})
			if w.Code != tc.status {
				t.Fatalf("status %d %s, want %d", w.Code, w.Body, tc.status)
			}
			if tc.status < 300 {
				d, err := e.mem.Get(context.Background(), tenantA, "k")
				if err != nil || string(d.Body) != doc {
					t.Errorf("stored %q, %v; want %q", d.Body, err, doc)
				}
				return
			}
			if msg := decodeError(t, w).Error.Message; !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q, want it to contain %q", msg, tc.msg)
			}
			if tc.status == 415 && w.Header().Get("Accept-Encoding") != "gzip, identity" {
				t.Errorf("415 without Accept-Encoding: %v", w.Header())
			}
			if n := e.mem.Writes(); n != 0 {
				t.Errorf("%d writes", n)
			}
		})
	}
}

// TestResolveContentEncoding: the resolve route decodes as PUT does.
func TestResolveContentEncoding(t *testing.T) {
	e := newEnv(t)
	u := "/v1/tenants/" + tenantA + "/conflicts/k/resolve"
	w := e.do(t, req{method: "POST", path: u, token: e.tokA, body: `{"delete":true}`, hdr: []string{"Content-Encoding", "br"}})
	if w.Code != 415 || !strings.Contains(decodeError(t, w).Error.Message, `"br"`) {
		t.Errorf("br: %d %s", w.Code, w.Body)
	}
	// Decoded, it reaches the conflict lookup: no conflict on k, 404.
	w = e.do(t, req{method: "POST", path: u, token: e.tokA, body: gzipped(t, `{"delete":true}`), hdr: []string{"Content-Encoding", "gzip"}})
	if w.Code != 404 {
		t.Errorf("gzip: %d %s, want 404 (read, then no conflict)", w.Code, w.Body)
	}
}

// deadlineDocs is a Docs whose writes give up when the request's context
// has ended or its carried deadline passed, as the store does before it
// stages a write.
type deadlineDocs struct{ memDocs }

func (d *deadlineDocs) Put(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (string, bool, error) {
	if err := deadline.Err(ctx); err != nil {
		return "", false, fault.E(fault.Unknown, fault.Context{Op: "store.put", Tenant: tenant, Key: key}, fmt.Errorf("not written: %w", err))
	}
	return d.memDocs.Put(ctx, tenant, key, body, pre)
}

// TestClientDeadline: a deadline the client asked for that passes before
// the write is the client's: 408 saying nothing was written, logged at
// Info. The node's own deadline passing is its failure: 503, at Error.
// Both with a standard deadline (Deadlines.Context) and with one carried
// as a value (Deadlines.Carry, what the node uses).
func TestClientDeadline(t *testing.T) {
	for _, carried := range []bool{false, true} {
		testClientDeadline(t, carried)
	}
}

// TestBadRequestTimeout: an X-Request-Timeout that does not parse, is not
// positive, is over 24h or is given twice is a 400 naming the header, on a
// write and on a read, and nothing is written.
func TestBadRequestTimeout(t *testing.T) {
	d := &deadlineDocs{}
	e := newEnv(t, func(o *server.Options) {
		o.Docs = d
		o.Deadline = resilience.Deadlines{}.Carry
	})
	for _, v := range [][]string{{"abc"}, {"-1"}, {"0"}, {"0s"}, {"1 s"}, {"25h"}, {"NaN"}, {"1s", "2s"}} {
		var hdr []string
		for _, x := range v {
			hdr = append(hdr, resilience.TimeoutHeader, x)
		}
		for _, method := range []string{"PUT", "GET"} {
			w := e.do(t, req{method: method, path: docURL(tenantA, "k"), token: e.tokA, body: `{}`, hdr: hdr})
			if msg := decodeError(t, w).Error.Message; w.Code != 400 || !strings.Contains(msg, resilience.TimeoutHeader) {
				t.Errorf("%s with %s %q: %d %q, want 400 naming the header", method, resilience.TimeoutHeader, v, w.Code, msg)
			}
		}
	}
	if d.Writes() != 0 {
		t.Errorf("%d writes, want none", d.Writes())
	}
	w := e.do(t, req{method: "PUT", path: docURL(tenantA, "k"), token: e.tokA, body: `{}`, hdr: []string{resilience.TimeoutHeader, " 1.5 "}})
	if w.Code/100 != 2 {
		t.Errorf("PUT with a valid %s: %d %s", resilience.TimeoutHeader, w.Code, w.Body)
	}
}

func testClientDeadline(t *testing.T, carried bool) {
	for _, tc := range []struct {
		name     string
		d        resilience.Deadlines
		timeout  string // X-Request-Timeout
		status   int
		code     string
		level    string
		msgParts []string
	}{
		{"client's", resilience.Deadlines{}, "1ns", 408, "timeout", "INFO",
			[]string{"X-Request-Timeout: 1ns", "nothing was written"}},
		{"node's default", resilience.Deadlines{Default: 1}, "", 503, "transient", "ERROR",
			[]string{"request deadline", "nothing was written"}},
		{"client's clamped to the node's maximum", resilience.Deadlines{Default: 1, Max: 1}, "10s", 503, "transient", "ERROR",
			[]string{"request deadline", "nothing was written"}},
	} {
		t.Run(fmt.Sprintf("%s/carried=%v", tc.name, carried), func(t *testing.T) {
			d := &deadlineDocs{}
			e := newEnv(t, func(o *server.Options) {
				o.Docs = d
				o.Deadline = tc.d.Context
				if carried {
					o.Deadline = tc.d.Carry
				}
			})
			var hdr []string
			if tc.timeout != "" {
				hdr = []string{resilience.TimeoutHeader, tc.timeout}
			}
			w := e.do(t, req{method: "PUT", path: docURL(tenantA, "k"), token: e.tokA, body: `{}`, hdr: hdr})
			if w.Code != tc.status {
				t.Fatalf("status %d %s, want %d", w.Code, w.Body, tc.status)
			}
			ae := decodeError(t, w)
			if ae.Error.Code != tc.code {
				t.Errorf("code %q, want %q", ae.Error.Code, tc.code)
			}
			for _, p := range tc.msgParts {
				if !strings.Contains(ae.Error.Message, p) {
					t.Errorf("message %q, want it to contain %q", ae.Error.Message, p)
				}
			}
			recs := e.logs.records(t)
			if len(recs) != 1 || recs[0]["level"] != tc.level || recs[0]["status"] != float64(tc.status) {
				t.Errorf("log %v, want one line at %s with status %d", recs, tc.level, tc.status)
			}
			if d.Writes() != 0 {
				t.Errorf("%d writes", d.Writes())
			}
		})
	}
}

// TestStalledBodyMessage: a body that stopped arriving is a 408 whose
// message says so and names no socket address.
func TestStalledBodyMessage(t *testing.T) {
	e := newEnv(t)
	addr := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 7070}
	peer := &net.TCPAddr{IP: net.IPv4(10, 9, 8, 7), Port: 51234}
	body := readerFunc(func([]byte) (int, error) {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: addr, Addr: peer, Err: timeoutErr{}}
	})
	r := httptest.NewRequest("PUT", docURL(tenantA, "k"), body)
	r.ContentLength = 10
	r.Header.Set("Authorization", "Bearer "+e.tokA)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	msg := decodeError(t, w).Error.Message
	if w.Code != 408 || !strings.Contains(msg, "stopped arriving") || strings.Contains(msg, "10.") || strings.Contains(msg, ":7070") {
		t.Errorf("%d %q: want 408 saying the body stopped arriving, without addresses", w.Code, msg)
	}
}

// TestStalledBodyAnswered: over a real connection, a body that stops
// arriving gets its 408 although the write timeout, counted from the
// headers, ends with the read timeout: the answer is not dropped with
// the connection.
func TestStalledBodyAnswered(t *testing.T) {
	e := newEnv(t, func(o *server.Options) {
		o.Timeouts = server.Timeouts{Read: 300 * time.Millisecond, Write: 300 * time.Millisecond}
	})
	addr := e.serve(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{", docURL(tenantA, "k"), e.tokA)
	c.SetReadDeadline(time.Now().Add(20 * time.Second)) // far past the timeouts: only a bug reaches it
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408", res.StatusCode)
	}
	if e.mem.Writes() != 0 {
		t.Fatal("a stalled body was stored")
	}
}

// TestStalledHeadersAnswered: a request line cut off by the header timeout
// is the client's slowness, answered 408 naming the timeout, where net/http
// took it for a malformed request (400).
func TestStalledHeadersAnswered(t *testing.T) {
	e := newEnv(t, func(o *server.Options) {
		o.Timeouts = server.Timeouts{ReadHeader: 200 * time.Millisecond}
	})
	ln := e.serveReal(t)
	for _, partial := range []string{"GET /v1/te", "PUT /v1/tenants/acme/docs/k HTT"} {
		c := dialAndSend(t, ln, partial)
		c.SetReadDeadline(time.Now().Add(20 * time.Second)) // far past the timeout: only a bug reaches it
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%q: no answer: %v", partial, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"code":"timeout"`) ||
			!strings.Contains(string(b), "header timeout (200ms)") {
			t.Errorf("%q: %d %s; want 408 naming the header timeout", partial, res.StatusCode, b)
		}
	}
	var timeouts int
	for _, r := range e.logs.records(t) {
		if r["op"] == "http.parse" && r["class"] == "transient" {
			timeouts++
		}
	}
	if timeouts != 2 {
		t.Errorf("%d stalled requests logged as transient, want 2", timeouts)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestLogLinesBounded: a request with a 60 KB key produces log lines and
// an error message of bounded size.
func TestLogLinesBounded(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("k", 60<<10)
	for _, path := range []string{docURL(tenantA, long), "/" + long} {
		e.logs.Reset()
		w := e.do(t, req{method: "PUT", path: path, token: e.tokA, body: `{}`})
		if w.Code != 400 && w.Code != 404 {
			t.Fatalf("status %d", w.Code)
		}
		if n := w.Body.Len(); n > 2048 {
			t.Errorf("%.40s…: error body of %d bytes", path, n)
		}
		if n := len(e.logs.String()); n == 0 || n > 4096 {
			t.Errorf("%.40s…: %d bytes of log", path, n)
		}
		recs := e.logs.records(t)
		if p, _ := recs[0]["path"].(string); !strings.HasSuffix(p, fmt.Sprintf("(%d bytes)", len(path))) {
			t.Errorf("path logged as %.80q…, want a bounded path with its length", p)
		}
	}
}

// serveReal serves e's server as the node does (its http.Server, through
// its Listener) on a loopback port until the test ends.
func (e *env) serveReal(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := e.srv.HTTPServer("")
	done := make(chan error, 1)
	go func() { done <- hs.Serve(e.srv.Listener(ln)) }()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return ln
}

// dialAndSend opens a connection to ln and writes request on it; it is
// closed when the test ends.
func dialAndSend(t *testing.T, ln net.Listener, request string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRawErrorsAreJSON: the requests net/http answers by itself, before
// any handler (a malformed percent-escape, a missing Host), get the JSON
// error body with a request id, over a real connection.
func TestRawErrorsAreJSON(t *testing.T) {
	e := newEnv(t)
	ln := e.serveReal(t)
	for _, tc := range []struct {
		name, request string
		status        int
		msg           string
	}{
		{"bad escape", "GET /v1/tenants/acme/docs/%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "two hex digits"},
		{"bad escape in PUT", "PUT /v1/tenants/acme/docs/a%2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 400, "malformed request"},
		{"no Host", "GET /livez HTTP/1.1\r\n\r\n", 400, "missing required Host header"},
		{"bad version", "GET /livez HTTP/9.1\r\nHost: x\r\n\r\n", 505, "HTTP version"},
		{"two Content-Lengths", "PUT /v1/tenants/acme/docs/k HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "Content-Length"},
		{"unsupported Expect", "PUT /v1/tenants/acme/docs/k HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: 2\r\n\r\n{}", 417, "Expect: 100-continue"},
		{"unsupported Expect, HTTP/1.0", "PUT /v1/tenants/acme/docs/k HTTP/1.0\r\nHost: x\r\nExpect: foo\r\nContent-Length: 2\r\n\r\n{}", 417, "Expect: 100-continue"},
		{"served normally", "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialAndSend(t, ln, tc.request)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, b, tc.status)
			}
			if tc.status == 200 {
				return
			}
			w := httptest.NewRecorder()
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.Body.Write(b)
			if msg := decodeError(t, w).Error.Message; !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q, want it to contain %q", msg, tc.msg)
			}
		})
	}
	var logged int
	for _, r := range e.logs.records(t) {
		if r["op"] == "http.parse" && r["level"] == "INFO" && r["request_id"] != "" {
			logged++
		}
	}
	if logged != 7 {
		t.Errorf("%d raw errors logged, want 7", logged)
	}
}

// TestRawErrorsLogged: a raw error is logged to the server's logger with
// the request id it was answered with.
func TestRawErrorsLogged(t *testing.T) {
	e := newEnv(t)
	logs := e.logs
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.NotFoundHandler()}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(e.srv.Listener(ln)) }()
	defer func() {
		hs.Close()
		<-done
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /metrics%zz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/json" || id == "" ||
		!strings.Contains(string(b), `"request_id":"`+id+`"`) {
		t.Errorf("%s %v %s", resp.Status, resp.Header, b)
	}
	if recs := logs.records(t); len(recs) != 1 || recs[0]["request_id"] != id {
		t.Errorf("logs %v", recs)
	}
}

// TestJSONErrors: a handler's http.Error answers, ServeMux's 404 and 405
// among them, become the JSON error with a request id; other answers pass.
func TestJSONErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /text", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /denied", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "admin token required", http.StatusUnauthorized)
	})
	mux.HandleFunc("GET /json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":{"code":"conflict","message":"mine","request_id":"`+w.Header().Get("X-Request-Id")+`"}}`)
	})
	h := server.JSONErrors(mux)
	for _, tc := range []struct {
		method, path, sentID string
		status               int
		code, msg            string // "" for an answer that passes through
	}{
		{"GET", "/text", "", 200, "", ""},
		{"GET", "/json", "", 409, "conflict", "mine"},
		{"GET", "/denied", "", 401, "unauthorized", "admin token required"},
		{"GET", "/nope", "rid-1", 404, "not_found", "404 page not found"},
		{"POST", "/text", "bad id!", 405, "method_not_allowed", "Method Not Allowed"},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.sentID != "" {
			r.Header.Set("X-Request-Id", tc.sentID)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		id := w.Header().Get("X-Request-Id")
		if w.Code != tc.status || id == "" || (tc.sentID == "rid-1") != (id == "rid-1") {
			t.Errorf("%s %s: %d, id %q", tc.method, tc.path, w.Code, id)
		}
		if tc.code == "" {
			if w.Body.String() != "ok\n" {
				t.Errorf("%s %s: body %q", tc.method, tc.path, w.Body)
			}
			continue
		}
		if e := decodeError(t, w); e.Error.Code != tc.code || e.Error.Message != tc.msg {
			t.Errorf("%s %s: %+v, want %q %q", tc.method, tc.path, e.Error, tc.code, tc.msg)
		}
	}
}

// TestErrorBeforeBodyAnswersAtOnce: a request refused before its body is
// read (here a wrong token) is answered at once, with the connection
// closed after it, while the client is still sending the body; net/http
// alone would first wait for up to 256 KiB more of it. An error answered
// after the whole body was read keeps the connection.
func TestErrorBeforeBodyAnswersAtOnce(t *testing.T) {
	e := newEnv(t)
	ln := e.serveReal(t)
	path := docURL(tenantA, "k")
	for _, tc := range []struct {
		name, request string
		status        int
		close         bool
	}{
		{"declared length, part sent", "PUT " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer cairn_nope\r\nContent-Length: 100\r\n\r\n{\"a", 401, true},
		{"chunked, stream open", "PUT " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer cairn_nope\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n", 401, true},
		{"body read, then refused", "PUT " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + e.tokA + "\r\nContent-Length: 3\r\n\r\n{\"a", 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialAndSend(t, ln, tc.request)
			// Far below the server's read timeout (30 s), which is when
			// net/http would give up waiting for the rest of the body.
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer while the body is still coming: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Close != tc.close {
				t.Errorf("%s, connection closed after it %v; want %d, %v", resp.Status, resp.Close, tc.status, tc.close)
			}
		})
	}
}

// TestRefusedBodyKeepsNoConnection: a request refused before its body is
// read (no token, another tenant's token, a bad key) closes its connection
// as soon as it is answered. net/http would otherwise read up to 256 KiB
// of the body after the answer, until the read timeout, so that clients
// sending no token could hold every connection of --max-conns. The read
// timeout here is an hour: a connection kept for it fails the test at
// the test's own deadline.
func TestRefusedBodyKeepsNoConnection(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.Timeouts.Read = time.Hour })
	ln := e.serveReal(t)
	for _, tc := range []struct{ name, auth, path string }{
		{"no token", "", "/v1/tenants/" + tenantA + "/docs/k"},
		{"other tenant's token", "Authorization: Bearer " + e.tokB + "\r\n", "/v1/tenants/" + tenantA + "/docs/k"},
		{"bad key", "Authorization: Bearer " + e.tokA + "\r\n", "/v1/tenants/" + tenantA + "/docs/a%00b"},
	} {
		for _, framing := range []string{"Content-Length: 10\r\n", "Transfer-Encoding: chunked\r\n"} {
			t.Run(tc.name+"/"+strings.TrimSpace(framing), func(t *testing.T) {
				c := dialAndSend(t, ln, "PUT "+tc.path+" HTTP/1.1\r\nHost: x\r\n"+tc.auth+framing+"\r\n{")
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				br := bufio.NewReader(c)
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("status %d %s, then %v: the connection stayed open", res.StatusCode, body, err)
				}
				if res.StatusCode < 400 || res.StatusCode >= 500 || !res.Close {
					t.Errorf("status %d, Connection: close %v", res.StatusCode, res.Close)
				}
			})
		}
	}
}

// TestGzipBodyEndsEarly: a gzip PUT whose connection ends before its
// Content-Length is answered as a body cut short, not as damaged gzip, on
// the connection the client still reads; nothing is stored.
func TestGzipBodyEndsEarly(t *testing.T) {
	e := newEnv(t)
	ln := e.serveReal(t)
	z := gzipped(t, `{"a":1}`)
	c := dialAndSend(t, ln, fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s",
		docURL(tenantA, "k"), e.tokA, len(z)+10, z))
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 400 || !strings.Contains(string(body), "request body ended early") || strings.Contains(string(body), "gzip") {
		t.Errorf("status %d %s", res.StatusCode, body)
	}
	if n := e.mem.Writes(); n != 0 {
		t.Errorf("%d writes", n)
	}
}

// TestBodilessMethodsAnswerAtOnce: a GET, HEAD or DELETE that declares a
// body it never sends is answered at once, on a connection that then
// closes, where the answer waited for the read timeout.
func TestBodilessMethodsAnswerAtOnce(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.Timeouts.Read = time.Hour })
	ln := e.serveReal(t)
	e.put(t, tenantA, "k", `{"a":1}`)
	for _, method := range []string{"GET", "HEAD", "DELETE"} {
		c := dialAndSend(t, ln, method+" "+docURL(tenantA, "k")+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+e.tokA+"\r\nContent-Length: 100000\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		io.ReadAll(res.Body)
		if res.StatusCode >= 300 || !res.Close {
			t.Errorf("%s: status %d, Connection: close %v", method, res.StatusCode, res.Close)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%s: then %v, not the end of the connection", method, err)
		}
	}
}
