package server_test

import (
	"net/http"

	"github.com/cairnstore/cairn/internal/server"
	"strings"
	"testing"
)

// TestDocLifecycle walks one document through every route and status.
func TestDocLifecycle(t *testing.T) {
	e := newEnv(t)
	tok := e.tokA
	u := docURL(tenantA, "users/42")
	steps := []struct {
		name     string
		q        req
		status   int
		code     string // error code, for error answers
		body     string // exact body, when set
		etagWant bool
	}{
		{name: "get missing", q: req{method: "GET", path: u}, status: 404, code: "not_found"},
		{name: "head missing", q: req{method: "HEAD", path: u}, status: 404},
		{name: "delete missing", q: req{method: "DELETE", path: u}, status: 404, code: "not_found"},
		{name: "create", q: req{method: "PUT", path: u, body: `{"n":1}`}, status: 201, etagWant: true},
		{name: "get", q: req{method: "GET", path: u}, status: 200, body: `{"n":1}`, etagWant: true},
		{name: "head", q: req{method: "HEAD", path: u}, status: 200, body: "", etagWant: true},
		{name: "replace", q: req{method: "PUT", path: u, body: `{"n":2}`}, status: 200, etagWant: true},
		{name: "get replaced", q: req{method: "GET", path: u}, status: 200, body: `{"n":2}`},
		{name: "delete", q: req{method: "DELETE", path: u}, status: 204, body: ""},
		{name: "get deleted", q: req{method: "GET", path: u}, status: 404, code: "not_found"},
		{name: "post not allowed", q: req{method: "POST", path: u, body: "{}"}, status: 405, code: "method_not_allowed"},
		{name: "put on listing", q: req{method: "PUT", path: "/v1/tenants/acme/docs", body: "{}"}, status: 405, code: "method_not_allowed"},
		{name: "unknown route", q: req{method: "GET", path: "/v2/nothing"}, status: 404, code: "not_found"},
		{name: "tenant without docs", q: req{method: "GET", path: "/v1/tenants/acme"}, status: 404, code: "not_found"},
		{name: "non-canonical path", q: req{method: "PUT", path: "/v1/tenants/acme/docs/a//b", body: "{}"}, status: 400, code: "invalid"},
		{name: "dot segment", q: req{method: "GET", path: "/v1/tenants/acme/docs/a/../b"}, status: 400, code: "invalid"},
	}
	for _, s := range steps {
		s.q.token = tok
		w := e.do(t, s.q)
		if w.Code != s.status {
			t.Fatalf("%s: status %d, want %d; body %s", s.name, w.Code, s.status, w.Body)
		}
		if s.code != "" {
			if got := decodeError(t, w).Error.Code; got != s.code {
				t.Errorf("%s: code %q, want %q", s.name, got, s.code)
			}
		}
		if s.body != "" || s.status == 204 || s.q.method == "HEAD" {
			if got := w.Body.String(); got != s.body {
				t.Errorf("%s: body %q, want %q", s.name, got, s.body)
			}
		}
		if s.etagWant && !strings.HasPrefix(w.Header().Get("ETag"), `"`) {
			t.Errorf("%s: ETag %q, want a strong tag", s.name, w.Header().Get("ETag"))
		}
		if w.Header().Get("X-Request-ID") == "" {
			t.Errorf("%s: no X-Request-ID", s.name)
		}
	}
	if w := e.do(t, req{method: "POST", path: u, token: tok}); w.Header().Get("Allow") != "GET, HEAD, PUT, DELETE" {
		t.Errorf("405 Allow = %q", w.Header().Get("Allow"))
	}
	// The other routes: the catch-all takes every method first, and answers
	// 405 where a route serves the path with another.
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/livez", "GET, HEAD"},
		{"DELETE", server.OpenAPIPath, "GET, HEAD"},
	} {
		w := e.do(t, req{method: tc.method, path: tc.path, token: tok})
		if w.Code != 405 || w.Header().Get("Allow") != tc.allow || decodeError(t, w).Error.Code != "method_not_allowed" {
			t.Errorf("%s %s: %d, Allow %q; want 405, Allow %q", tc.method, tc.path, w.Code, w.Header().Get("Allow"), tc.allow)
		}
	}
}

func TestGetHeaders(t *testing.T) {
	e := newEnv(t)
	etag := e.put(t, tenantA, "k", `{"a":"b"}`)
	w := e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: e.tokA})
	for name, want := range map[string]string{
		"Content-Type": "application/json", "ETag": etag, "Content-Length": "9",
	} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	// PUT 201 carries Location.
	w = e.do(t, req{method: "PUT", path: docURL(tenantA, "new%2Fkey"), token: e.tokA, body: "1"})
	if got, want := w.Header().Get("Location"), "/v1/tenants/acme/docs/new%2Fkey"; w.Code != 201 || got != want {
		t.Errorf("PUT: %d Location %q, want 201 %q", w.Code, got, want)
	}
}

// TestEscapedKeys checks that keys with "/" sequences, dots and spaces
// round-trip when escaped.
func TestEscapedKeys(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ path, key string }{
		{"a/b/c", "a/b/c"},
		{"a%2F%2Fb", "a//b"},
		{"%2E%2E", ".."},
		{"sp%20ace", "sp ace"},
		{"%E2%82%AC", "€"},
		{"q%3Fx", "q?x"},
	} {
		w := e.do(t, req{method: "PUT", path: docURL(tenantA, tc.path), token: e.tokA, body: `"x"`})
		if w.Code != 201 {
			t.Fatalf("PUT %s: %d %s", tc.path, w.Code, w.Body)
		}
		if _, err := e.mem.Get(t.Context(), tenantA, tc.key); err != nil {
			t.Errorf("PUT %s did not store key %q: %v", tc.path, tc.key, err)
		}
	}
}

func TestLivezReadyz(t *testing.T) {
	ready := false
	e := newEnv(t, func(o *server.Options) { o.Ready = func() bool { return ready } })
	check := func(path string, want int, wantBody string) {
		t.Helper()
		w := e.do(t, req{method: "GET", path: path})
		if w.Code != want || !strings.Contains(w.Body.String(), wantBody) {
			t.Errorf("%s = %d %s, want %d %s", path, w.Code, w.Body, want, wantBody)
		}
	}
	check("/livez", 200, "live")
	check("/readyz", 503, "starting")
	ready = true
	check("/readyz", 200, "ready")
	e.srv.SetDraining()
	check("/readyz", 503, "draining")
	check("/livez", 200, "live")
	// Probes are not logged as failures.
	for _, rec := range e.logs.records(t) {
		if rec["level"] != "DEBUG" {
			t.Errorf("probe logged at %v: %v", rec["level"], rec)
		}
	}
	if w := e.do(t, req{method: "POST", path: "/livez"}); w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /livez = %d", w.Code)
	}
}
