package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// TestAdmissionAfterAuthentication: Options.Middleware sees every request
// (tracing must see the refused ones), the Admission's Limiter only those
// that authenticated for the tenant they name, so a per-tenant limiter
// there cannot be spent by strangers. An admin acting on a tenant is admitted as
// that tenant.
func TestAdmissionAfterAuthentication(t *testing.T) {
	var outer, admitted []string
	record := func(seen *[]string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r)
				// Read after next: authentication runs inside Middleware.
				*seen = append(*seen, server.TenantOf(r)+":"+boolWord(reqctx.From(r.Context()).Authenticated))
			})
		}
	}
	e := newEnv(t, func(o *server.Options) {
		o.Middleware = []func(http.Handler) http.Handler{record(&outer)}
		o.Admission.Limiter = recordLimiter{record(&admitted)}
	})
	for _, tok := range []string{"", "cairn_nope", e.tokB} { // 401, 401, 403
		if w := e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: tok}); w.Code != 401 && w.Code != 403 {
			t.Fatalf("stranger: %d", w.Code)
		}
		if w := e.do(t, req{method: "POST", path: "/v1/tenants/acme/conflicts/k/resolve", token: tok, body: "{}"}); w.Code != 401 && w.Code != 403 {
			t.Fatalf("stranger resolving: %d", w.Code)
		}
	}
	if len(admitted) != 0 {
		t.Errorf("admission middleware saw refused requests: %v", admitted)
	}
	if got, want := strings.Join(outer, ","), strings.Repeat("acme:no,", 5)+"acme:no"; got != want {
		t.Errorf("outer middleware saw %q, want %q", got, want)
	}
	outer = nil
	e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: e.tokA})
	e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: e.tokAdmin})
	if got, want := strings.Join(admitted, ","), "acme:yes,acme:yes"; got != want {
		t.Errorf("admission middleware saw %q, want %q (the tenant's token, then the admin's)", got, want)
	}
	if got, want := strings.Join(outer, ","), "acme:yes,acme:yes"; got != want {
		t.Errorf("outer middleware saw %q, want %q", got, want)
	}
}

// recordLimiter is a Limiter that admits every request through mw and
// never refuses a failed authentication.
type recordLimiter struct {
	mw func(http.Handler) http.Handler
}

func (l recordLimiter) Middleware(_ func(*http.Request) string, next http.Handler) http.Handler {
	return l.mw(next)
}
func (recordLimiter) AuthFailed() (bool, time.Duration) { return true, 0 }

func boolWord(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// TestAuthFailureBudget: once Admission.AuthFailed says the node's budget of
// failed authentications is spent, a failing request is answered 429 with
// its Retry-After and the reason it failed; a valid token is still served.
func TestAuthFailureBudget(t *testing.T) {
	budget := 2
	calls := 0
	e := newEnv(t, func(o *server.Options) {
		o.Admission.AuthFailed = func() (bool, time.Duration) {
			calls++
			if budget == 0 {
				return false, 1500 * time.Millisecond
			}
			budget--
			return true, 0
		}
	})
	for i, want := range []int{401, 403, 429, 429} {
		tok := []string{"", e.tokB, "cairn_nope", ""}[i]
		w := e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: tok})
		if w.Code != want {
			t.Fatalf("failure %d: %d, want %d", i, w.Code, want)
		}
		if want != 429 {
			continue
		}
		body := decodeError(t, w)
		if body.Error.Code != "exhausted" || !strings.Contains(body.Error.Message, "fail authentication") {
			t.Errorf("over budget: %+v", body.Error)
		}
		if ra := w.Header().Get("Retry-After"); ra != "2" {
			t.Errorf("Retry-After %q, want 2 (1.5s rounded up)", ra)
		}
		if c := w.Header().Get("Connection"); c != "close" {
			t.Errorf("over budget: Connection %q, want close, as after a 401", c)
		}
	}
	if w := e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: e.tokA}); w.Code != 404 {
		t.Errorf("valid token with the budget spent: %d, want served (404)", w.Code)
	}
	if calls != 4 {
		t.Errorf("AuthFailed called %d times, want once per failure (4)", calls)
	}
}

// TestOversizeTokenRefusedUnhashed: a token longer than MaxTokenBytes is
// refused with a message saying so (before it is hashed, so a 64 KiB header
// costs no more than a short one).
func TestOversizeTokenRefusedUnhashed(t *testing.T) {
	e := newEnv(t)
	long := "Bearer " + strings.Repeat("x", server.MaxTokenBytes+1)
	w := e.do(t, req{method: "GET", path: docURL(tenantA, "k"), hdr: []string{"Authorization", long}})
	if msg := decodeError(t, w).Error.Message; w.Code != 401 || !strings.Contains(msg, "longer than") {
		t.Errorf("oversize token: %d %q", w.Code, msg)
	}
}

// newAdmin returns an admin listener's server with the env's tokens, serving
// h as its metrics and tenant figures.
func (e *env) newAdmin(t *testing.T, requireToken bool, h http.Handler) *server.Server {
	t.Helper()
	s, err := server.NewAdmin(server.AdminOptions{Auth: e.auth, RequireToken: requireToken, Metrics: h, TenantStats: h})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAdminHandler: the admin listener's handler gives every request an id
// as the API does and checks the admin token with the API's parser: the
// scheme in any case, spaces around the token; refusals are the API's JSON
// error with the request id.
func TestAdminHandler(t *testing.T) {
	e := newEnv(t)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reqctx.RequestID(r.Context()) == "" {
			t.Error("admin request without a request id in its context")
		}
		w.WriteHeader(204)
	})
	guarded := e.newAdmin(t, true, inner)
	for _, tc := range []struct {
		name, header string
		want         int
		code         string
	}{
		{"canonical", "Bearer " + e.tokAdmin, 204, ""},
		{"lowercase scheme", "bearer " + e.tokAdmin, 204, ""},
		{"uppercase scheme, spaces", "BEARER    " + e.tokAdmin + "  ", 204, ""},
		{"no header", "", 401, "unauthorized"},
		{"wrong token", "Bearer cairn_nope", 401, "unauthorized"},
		{"tenant token", "Bearer " + e.tokA, 403, "forbidden"},
		{"basic scheme", "Basic " + e.tokAdmin, 401, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/admin/tenants", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := httptest.NewRecorder()
			guarded.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if w.Header().Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			if tc.code != "" {
				if got := decodeError(t, w).Error.Code; got != tc.code {
					t.Errorf("code %q, want %q", got, tc.code)
				}
			}
		})
	}
	// A client's sane request id is kept, as on the API; open (loopback)
	// admin routes get ids too.
	r := httptest.NewRequest("GET", "/metrics", nil)
	r.Host = "127.0.0.1:7071" // a loopback listener serves requests addressed to it as such only
	r.Header.Set("X-Request-Id", "scrape-1")
	w := httptest.NewRecorder()
	e.newAdmin(t, false, inner).ServeHTTP(w, r)
	if w.Code != 204 || w.Header().Get("X-Request-Id") != "scrape-1" {
		t.Errorf("open admin route: %d, X-Request-Id %q", w.Code, w.Header().Get("X-Request-Id"))
	}
}

// TestLoopbackAdminRefusesBrowsersOfOtherSites: a loopback admin listener,
// which serves without a token, answers only requests addressed to a
// loopback name (a DNS-rebinding page addresses its own), and takes no
// change from another site's page (its Origin); health answers anyone.
func TestLoopbackAdminRefusesBrowsersOfOtherSites(t *testing.T) {
	e := newEnv(t)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	s, err := server.NewAdmin(server.AdminOptions{Auth: e.auth, Metrics: inner, TenantStats: inner,
		Reconciler: stubReconciler{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path, host, origin string
		want                       int
	}{
		{"GET", "/metrics", "127.0.0.1:7071", "", 204},
		{"GET", "/metrics", "localhost:7071", "", 204},
		{"GET", "/metrics", "[::1]:7071", "", 204},
		{"GET", "/metrics", "evil.example:7071", "", 403},
		{"GET", "/v1/admin/tenants", "rebound.example", "", 403},
		{"GET", "/livez", "evil.example", "", 200},
		{"POST", "/v1/admin/reconcile/run", "127.0.0.1:7071", "", 202},
		{"POST", "/v1/admin/reconcile/run", "127.0.0.1:7071", "http://127.0.0.1:7071", 202},
		{"POST", "/v1/admin/reconcile/run", "127.0.0.1:7071", "http://evil.example", 403},
		{"POST", "/v1/admin/reconcile/run", "127.0.0.1:7071", "null", 403},
		// Another port on loopback is another site: a development server's
		// or a notebook's page.
		{"POST", "/v1/admin/reconcile/run", "127.0.0.1:7071", "http://127.0.0.1:9999", 403},
		{"POST", "/v1/admin/reconcile/run", "127.0.0.1:7071", "http://localhost:7071", 403},
		{"POST", "/v1/admin/reconcile/run", "localhost:7071", "http://localhost:7071", 202},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %s, Host %s, Origin %q: %d %s, want %d", tc.method, tc.path, tc.host, tc.origin, w.Code, w.Body, tc.want)
		}
	}
}

// stubReconciler triggers nothing and reports nothing.
type stubReconciler struct{}

func (stubReconciler) ReconcileStatus() api.ReconcileStatus { return api.ReconcileStatus{} }
func (stubReconciler) RunReconcile(context.Context, server.ReconcileRequest) (api.ReconcileRun, error) {
	return api.ReconcileRun{Triggered: true}, nil
}

// TestReconcileRunParameters: a run's query names only what the route
// takes, each once (a misspelt tenant= would start rounds of every
// tenant), and every run asked for is logged with what it asked.
func TestReconcileRunParameters(t *testing.T) {
	e := newEnv(t)
	s, err := server.NewAdmin(server.AdminOptions{Auth: e.auth, Reconciler: stubReconciler{},
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query, msg string
		want       int
	}{
		{"tenat=acme", "unknown query parameter", 400},
		{"tenant=acme&tenant=beta", "more than once", 400},
		{"tenant=acme&confirm=1", "", 202},
	} {
		r := httptest.NewRequest("POST", "/v1/admin/reconcile/run?"+tc.query, nil)
		r.Host = "127.0.0.1:7071"
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != tc.want || (tc.msg != "" && !strings.Contains(decodeError(t, w).Error.Message, tc.msg)) {
			t.Errorf("%s: %d %s, want %d naming %q", tc.query, w.Code, w.Body, tc.want, tc.msg)
		}
	}
	var logged int
	for _, r := range e.logs.records(t) {
		if r["msg"] == "admin: reconciliation run requested" && r["tenant"] == "acme" && r["confirm"] == true {
			logged++
		}
	}
	if logged != 1 {
		t.Errorf("%d log lines for the confirmed run, want 1", logged)
	}
}
