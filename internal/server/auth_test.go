package server_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/servertest"
)

// TestAuthMatrix runs every tenant route with no token, a garbage token, a
// token of another tenant, the admin token and the tenant's own token.
func TestAuthMatrix(t *testing.T) {
	e := newEnv(t)
	e.put(t, tenantA, "k", `{}`)
	routes := []struct {
		name, method, path, body string
		ok                       int // status for an authorized caller
	}{
		{"get", "GET", docURL(tenantA, "k"), "", 200},
		{"head", "HEAD", docURL(tenantA, "k"), "", 200},
		{"put", "PUT", docURL(tenantA, "k"), `{"v":1}`, 200},
		{"list", "GET", "/v1/tenants/acme/docs", "", 200},
		{"delete", "DELETE", docURL(tenantA, "k"), "", 204},
		{"conflicts", "GET", "/v1/tenants/acme/conflicts", "", 200},
		{"conflict", "GET", conflictURL(tenantA, "c"), "", 200},
		{"resolve", "POST", conflictURL(tenantA, "c") + "/resolve", `{"choose":"s1"}`, 200},
	}
	callers := []struct {
		name, token string
		status      int // 0: the route's ok status
		code        string
		challenge   string
	}{
		{"no token", "", 401, "unauthorized", `Bearer realm="cairn"`},
		{"bad token", "cairn_nope", 401, "unauthorized", `Bearer realm="cairn", error="invalid_token"`},
		{"wrong tenant", e.tokB, 403, "forbidden", ""},
		{"admin", e.tokAdmin, 0, "", ""},
		{"right tenant", e.tokA, 0, "", ""},
	}
	for _, c := range callers {
		for _, rt := range routes {
			t.Run(c.name+"/"+rt.name, func(t *testing.T) {
				e.put(t, tenantA, "k", `{}`)                 // an earlier DELETE may have removed it
				e.mem.SetConflict(tenantA, twoSiblings("c")) // an earlier resolve may have resolved it
				writes := e.mem.Writes()
				w := e.do(t, req{method: rt.method, path: rt.path, token: c.token, body: rt.body})
				want := c.status
				if want == 0 {
					want = rt.ok
				}
				if w.Code != want {
					t.Fatalf("status %d, want %d: %s", w.Code, want, w.Body)
				}
				if got := w.Header().Get("WWW-Authenticate"); got != c.challenge {
					t.Errorf("WWW-Authenticate = %q, want %q", got, c.challenge)
				}
				if c.code != "" {
					if rt.method != "HEAD" {
						if got := decodeError(t, w).Error.Code; got != c.code {
							t.Errorf("code %q, want %q", got, c.code)
						}
					}
					if e.mem.Writes() != writes {
						t.Errorf("a refused %s reached Docs", rt.name)
					}
				}
			})
		}
	}
}

func TestAuthDetails(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, header string
		want         int
		msg          string // for a 401: what the message says
	}{
		{"lowercase scheme", "bearer " + e.tokA, 200, ""},
		{"extra spaces", "Bearer    " + e.tokA + "  ", 200, ""},
		{"basic scheme", "Basic " + e.tokA, 401, "uses the Basic scheme"},
		{"scheme only", "Bearer ", 401, "empty bearer token"},
		{"no header", "", 401, "missing bearer token"},
		// The token is not repeated as if it were a scheme.
		{"token without scheme", e.tokA, 401, "not of the Bearer scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.header != "" {
				hdr = []string{"Authorization", tc.header}
			}
			w := e.do(t, req{method: "GET", path: "/v1/tenants/acme/docs", hdr: hdr})
			if w.Code != tc.want {
				t.Errorf("status %d, want %d", w.Code, tc.want)
			}
			if tc.msg != "" {
				if msg := decodeError(t, w).Error.Message; !strings.Contains(msg, tc.msg) || strings.Contains(msg, e.tokA) {
					t.Errorf("message %q, want it to say %q and not hold the token", msg, tc.msg)
				}
			}
			// A client without a valid token keeps no connection open.
			if closes := w.Header().Get("Connection") == "close"; closes != (w.Code == 401) {
				t.Errorf("status %d with Connection %q", w.Code, w.Header().Get("Connection"))
			}
		})
	}
	// Two Authorization headers: neither is guessed at, whichever comes first.
	for _, pair := range [][2]string{{"Bearer " + e.tokA, "Bearer wrong"}, {"Bearer wrong", "Bearer " + e.tokA}} {
		w := e.do(t, req{method: "GET", path: "/v1/tenants/acme/docs", hdr: []string{"Authorization", pair[0], "Authorization", pair[1]}})
		if msg := decodeError(t, w).Error.Message; w.Code != 400 || !strings.Contains(msg, "more than one Authorization header") {
			t.Errorf("two Authorization headers: %d %q, want 400 naming them", w.Code, msg)
		}
	}
	// A tenant that is not configured: admin may act on it, a tenant token may not.
	if w := e.do(t, req{method: "GET", path: "/v1/tenants/gamma/docs", token: e.tokAdmin}); w.Code != 200 {
		t.Errorf("admin on unconfigured tenant: %d", w.Code)
	}
	if w := e.do(t, req{method: "GET", path: "/v1/tenants/gamma/docs", token: e.tokA}); w.Code != 403 {
		t.Errorf("tenant token on unconfigured tenant: %d", w.Code)
	}
	// A bad tenant name is a 400 naming it, whoever asks.
	w := e.do(t, req{method: "GET", path: "/v1/tenants/Bad_T/docs/k", token: e.tokAdmin})
	if msg := decodeError(t, w).Error.Message; w.Code != 400 || !strings.Contains(msg, `tenant "Bad_T"`) {
		t.Errorf("bad tenant: %d %q", w.Code, msg)
	}
}

func TestTokenHelpers(t *testing.T) {
	tok, h, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, server.TokenPrefix) || len(tok) < 40 {
		t.Errorf("token %q", tok)
	}
	if server.HashToken(tok) != h {
		t.Error("HashToken disagrees with NewToken")
	}
	hexed := strings.ToUpper(strings.Repeat("ab", 32))
	got, err := server.ParseTokenHash(hexed)
	if err != nil || got[0] != 0xab || got[31] != 0xab {
		t.Errorf("ParseTokenHash = %x, %v", got, err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 32), strings.Repeat("ab", 33)} {
		if _, err := server.ParseTokenHash(bad); err == nil {
			t.Errorf("ParseTokenHash(%q) accepted", bad)
		}
	}
	tok2, _, _ := server.NewToken()
	if tok2 == tok {
		t.Error("two NewToken calls gave the same token")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, o := range map[string]server.Options{
		"no docs":         {},
		"bad tenant":      {Docs: &memDocs{}, Auth: server.Auth{Tenants: map[string][][32]byte{"Nope!": nil}}},
		"negative limit":  {Docs: &memDocs{}, MaxBodyBytes: -1},
		"limit above max": {Docs: &memDocs{}, ListLimit: 10, MaxListLimit: 5},
	} {
		if _, err := server.New(o); err == nil {
			t.Errorf("%s: New accepted", name)
		}
	}
}

// AdminRoutes: the mount seam, admin access and middleware order.
func TestMountAndMiddleware(t *testing.T) {
	var seen []string
	mw := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = append(seen, name+":"+server.TenantOf(r))
				next.ServeHTTP(w, r)
			})
		}
	}
	admin := server.Route{Pattern: "POST /v1/admin/compact", Op: "admin.compact", Access: server.AccessAdmin,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) })}
	e := newEnv(t, func(o *server.Options) {
		o.Middleware = []func(http.Handler) http.Handler{mw("outer"), mw("inner")}
		o.Routes = []server.Route{admin}
	})
	if w := e.do(t, req{method: "POST", path: "/v1/admin/compact", token: e.tokAdmin}); w.Code != 202 {
		t.Errorf("admin route with admin token: %d", w.Code)
	}
	if w := e.do(t, req{method: "POST", path: "/v1/admin/compact", token: e.tokA}); w.Code != 403 {
		t.Errorf("admin route with tenant token: %d", w.Code)
	}
	if w := e.do(t, req{method: "POST", path: "/v1/admin/compact"}); w.Code != 401 {
		t.Errorf("admin route without token: %d", w.Code)
	}
	seen = nil
	e.do(t, req{method: "GET", path: "/v1/tenants/acme/docs"}) // 401, but middleware ran first
	if got, want := strings.Join(seen, ","), "outer:acme,inner:acme"; got != want {
		t.Errorf("middleware saw %q, want %q", got, want)
	}
	// A tenant name the node refuses is refused inside the middleware,
	// which measures every answer; it names no tenant there.
	seen = nil
	if w := e.do(t, req{method: "GET", path: "/v1/tenants/Acme/docs", token: e.tokA}); w.Code != 400 {
		t.Errorf("invalid tenant name: %d", w.Code)
	}
	if got, want := strings.Join(seen, ","), "outer:,inner:"; got != want {
		t.Errorf("middleware saw %q, want %q", got, want)
	}
	seen = nil
	e.do(t, req{method: "GET", path: "/livez"})
	if len(seen) != 0 {
		t.Errorf("middleware ran on /livez: %v", seen)
	}
	// Mount errors.
	for name, rt := range map[string]server.Route{
		"conflict":      admin,
		"nil handler":   {Pattern: "GET /x", Op: "x"},
		"no op":         {Pattern: "GET /x", Handler: http.NotFoundHandler()},
		"tenant no var": {Pattern: "GET /x", Op: "x", Access: server.AccessTenant, Handler: http.NotFoundHandler()},
		"bad pattern":   {Pattern: "GET /{", Op: "x", Handler: http.NotFoundHandler()},
	} {
		if err := e.srv.Mount(rt); err == nil {
			t.Errorf("Mount %s: no error", name)
		}
	}
}

// TestRefusedTokenLogged: a request refused for its token (401, and 403
// for another tenant's) is logged with the address it came from, which an
// audit of the tokens tried needs.
func TestRefusedTokenLogged(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		token string
		want  int
	}{{"not-a-token", 401}, {e.tokB, 403}} {
		r := httptest.NewRequest("GET", docURL(tenantA, "k"), nil)
		r.RemoteAddr = "192.0.2.7:51234"
		r.Header.Set("Authorization", "Bearer "+c.token)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Fatalf("status %d, want %d", w.Code, c.want)
		}
	}
	n := 0
	for _, rec := range e.logs.records(t) {
		if rec["msg"] == "request failed" && (rec["status"] == 401.0 || rec["status"] == 403.0) {
			n++
			if rec["remote"] != "192.0.2.7:51234" {
				t.Errorf("a refused token's log line has remote %v, want the client's address: %v", rec["remote"], rec)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d log lines of refused tokens, want 2", n)
	}
}

// TestSharedHashRefused: a token hash given to the admin and a tenant, or
// to two tenants, is a configuration error, whoever builds the server.
func TestSharedHashRefused(t *testing.T) {
	h := [32]byte{7}
	for _, a := range []server.Auth{
		{Tenants: map[string][][32]byte{"acme": {h}}, Admin: [][32]byte{h}},
		{Tenants: map[string][][32]byte{"acme": {{1}, h}, "beta": {h}}},
	} {
		if _, err := server.New(server.Options{Docs: &servertest.Mem{}, Auth: a}); !errors.Is(err, fault.ErrConfig) || !strings.Contains(err.Error(), "is also given to") {
			t.Errorf("server.New with a hash shared: %v; want a config error naming the roles", err)
		}
	}
	if _, err := server.New(server.Options{Docs: &servertest.Mem{}, Auth: server.Auth{Tenants: map[string][][32]byte{"acme": {h, h}}}}); err != nil {
		t.Errorf("one tenant's hash given twice: %v", err)
	}
}
