package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
)

// TestReadyzCatchingUp: /readyz answers 503 "catching_up" while any
// tenant is catching up, 200 "ready" with ServeWhileCatchingUp, and 200
// "ready" once none is. The admin listener's names the tenants; the API's,
// which answers without a token, names none.
func TestReadyzCatchingUp(t *testing.T) {
	pending := []string{"acme", "beta"}
	type body struct {
		Status     string   `json:"status"`
		CatchingUp []string `json:"catching_up"`
	}
	decode := func(t *testing.T, w *httptest.ResponseRecorder) body {
		var b body
		if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
			t.Fatalf("body %q: %v", w.Body, err)
		}
		return b
	}
	for _, serve := range []bool{false, true} {
		wantCode, wantStatus := 503, "catching_up"
		if serve {
			wantCode, wantStatus = 200, "ready"
		}
		e := newEnv(t, func(o *server.Options) {
			o.CatchingUp = func() []string { return pending }
			o.ServeWhileCatchingUp = serve
		})
		w := e.do(t, req{method: "GET", path: "/readyz"})
		if b := decode(t, w); w.Code != wantCode || b.Status != wantStatus || b.CatchingUp != nil || strings.Contains(w.Body.String(), "acme") {
			t.Errorf("API, serve while catching up %v: %d %s; want %d %s naming no tenant", serve, w.Code, w.Body, wantCode, wantStatus)
		}
		admin, err := server.NewAdmin(server.AdminOptions{
			CatchingUp: func() []string { return pending }, ServeWhileCatchingUp: serve,
		})
		if err != nil {
			t.Fatal(err)
		}
		w = httptest.NewRecorder()
		admin.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		if b := decode(t, w); w.Code != wantCode || b.Status != wantStatus || strings.Join(b.CatchingUp, ",") != "acme,beta" {
			t.Errorf("admin, serve while catching up %v: %d %s; want %d %s naming acme and beta", serve, w.Code, w.Body, wantCode, wantStatus)
		}
	}
	e := newEnv(t, func(o *server.Options) { o.CatchingUp = func() []string { return nil } })
	if w := e.do(t, req{method: "GET", path: "/readyz"}); w.Code != 200 || !strings.Contains(w.Body.String(), `"ready"`) {
		t.Errorf("nothing catching up: %d %s", w.Code, w.Body)
	}
}

// TestCatchingUpErrorAnswer: a Docs error CatchingUpError is a 503 with
// the code catching_up, a message naming the tenant, and Retry-After.
func TestCatchingUpErrorAnswer(t *testing.T) {
	e := newEnv(t, func(o *server.Options) {
		o.Docs = &memDocs{get: func(ctx context.Context, tenant, key string) (server.Doc, error) {
			return server.Doc{}, &server.CatchingUpError{Tenant: tenant, Msg: "cannot tell yet", Wait: 3 * time.Second,
				Err: fault.New(fault.Corruption, fault.Context{}, "bad object")}
		}}
	})
	w := e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: e.tokA})
	got := decodeError(t, w)
	if w.Code != 503 || got.Error.Code != "catching_up" || w.Header().Get("Retry-After") != "3" ||
		!strings.Contains(got.Error.Message, "tenant acme is catching up") || strings.Contains(got.Error.Message, "bad object") {
		t.Fatalf("answer: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}

// TestReadThroughHeader: a document read through from a backend says so
// in X-Cairn-Read-Through, on GET, HEAD and a 304; a local one does not.
func TestReadThroughHeader(t *testing.T) {
	const etag = `"abc"`
	e := newEnv(t, func(o *server.Options) {
		o.Docs = &memDocs{get: func(ctx context.Context, tenant, key string) (server.Doc, error) {
			if key == "local" {
				return server.Doc{ETag: etag, Body: []byte(`{}`)}, nil
			}
			return server.Doc{ETag: etag, Body: []byte(`{"remote":1}`), ReadThrough: "s3"}, nil
		}}
	})
	for _, q := range []req{
		{method: "GET", path: docURL(tenantA, "k"), token: e.tokA},
		{method: "HEAD", path: docURL(tenantA, "k"), token: e.tokA},
		{method: "GET", path: docURL(tenantA, "k"), token: e.tokA, hdr: []string{"If-None-Match", etag}},
	} {
		w := e.do(t, q)
		if w.Code/100 > 3 || w.Header().Get("X-Cairn-Read-Through") != "s3" || w.Header().Get("ETag") != etag {
			t.Errorf("%s %v: %d X-Cairn-Read-Through %q ETag %q", q.method, q.hdr, w.Code, w.Header().Get("X-Cairn-Read-Through"), w.Header().Get("ETag"))
		}
	}
	if w := e.do(t, req{method: "GET", path: docURL(tenantA, "local"), token: e.tokA}); w.Header().Get("X-Cairn-Read-Through") != "" {
		t.Errorf("a local document: X-Cairn-Read-Through %q", w.Header().Get("X-Cairn-Read-Through"))
	}
}

// TestAdminReadyzNotLogged: the admin listener's /readyz answers a node
// that is starting or catching up with 503 as the API's does, and, like
// the API's, does not log that answer as a failed request: a probe every
// few seconds would fill the log with errors.
func TestAdminReadyzNotLogged(t *testing.T) {
	for _, c := range []struct {
		name       string
		ready      bool
		catchingUp []string
	}{{"starting", false, nil}, {"catching up", true, []string{"acme"}}} {
		var logs logSink
		s, err := server.NewAdmin(server.AdminOptions{
			Logger:     slog.New(slog.NewJSONHandler(&logs, nil)),
			Ready:      func() bool { return c.ready },
			CatchingUp: func() []string { return c.catchingUp },
		})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s: /readyz %d %s, want 503", c.name, w.Code, w.Body)
		}
		if recs := logs.records(t); len(recs) != 0 {
			t.Errorf("%s: /readyz's 503 logged: %v", c.name, recs)
		}
	}
}

// TestCatchingUpErrorClass: a 503 catching_up whose cause is the document's
// absence on the node is counted and logged as the transient failure it is,
// not as not_found.
func TestCatchingUpErrorClass(t *testing.T) {
	nf := fault.New(fault.NotFound, fault.Context{}, "document not found")
	for _, err := range []error{
		&server.CatchingUpError{Tenant: "acme", Msg: "cannot tell", Err: nf},
		&server.CatchingUpError{Tenant: "acme", Msg: "cannot tell"},
		&server.CatchingUpError{Tenant: "acme", Msg: "cannot tell", Err: errors.New("boom")},
	} {
		if c := fault.ClassOf(err); c != fault.Transient {
			t.Errorf("%v: class %v, want transient", err, c)
		}
	}
}
