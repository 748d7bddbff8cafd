package server

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// routeServer is a server with the built-in routes and a docs service that
// is never called (the router tests do not serve).
func routeServer(t testing.TB, extra ...Route) *Server {
	t.Helper()
	s, err := New(Options{Docs: nopDocs{}, Routes: extra})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type nopDocs struct{ Docs }

// match is what ServeMux chose for a request: the pattern and the path
// values of the routed request, or redirect set when it redirected.
type match struct {
	pattern, tenant, key string
	redirect             bool
}

// muxMatch routes r through a ServeMux with the same patterns as s, whose
// handlers record what they were given.
func muxMatch(s *Server, r *http.Request) match {
	mux := http.NewServeMux()
	var got match
	for _, rt := range s.Routes() {
		mux.HandleFunc(rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			got = match{pattern: r.Pattern, tenant: r.PathValue("tenant"), key: r.PathValue("key")}
		})
	}
	mux.ServeHTTP(httptest.NewRecorder(), r)
	if got.pattern == "" {
		got.redirect = true
	}
	return got
}

// checkRoute fails if the server's own router answers r differently from
// ServeMux. It reports whether the router answered.
func checkRoute(t testing.TB, s *Server, r *http.Request) bool {
	t.Helper()
	p := r.URL.EscapedPath()
	if r.RequestURI == "*" || !strings.HasPrefix(r.URL.Path, "/") || strings.HasPrefix(p, "/v1/") && !canonical(p) {
		return false // ServeHTTP refuses it before routing
	}
	_, pattern, tenant, key, ok := s.router.route(r.Method, p)
	if !ok {
		return false
	}
	got := match{pattern: pattern, tenant: tenant, key: key}
	if want := muxMatch(s, r); got != want {
		t.Errorf("%s %q: the router chose %+v, ServeMux %+v", r.Method, r.RequestURI, got, want)
	}
	if _, want := s.mux.Handler(r); pattern != want {
		t.Errorf("%s %q: the router chose %q, the server's ServeMux %q", r.Method, r.RequestURI, pattern, want)
	}
	return true
}

// readRequest parses a request line as net/http's server does, or returns
// nil where it would refuse it.
func readRequest(method, target string) *http.Request {
	if strings.ContainsAny(method+target, " \r\n") {
		return nil
	}
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: cairn.test\r\n\r\n")))
	if err != nil {
		return nil
	}
	return r
}

func TestDocRouter(t *testing.T) {
	s := routeServer(t)
	for _, tc := range []struct {
		method, target string
		routed         bool
	}{
		{"GET", "/v1/tenants/acme/docs/users/42", true},
		{"HEAD", "/v1/tenants/acme/docs/users/42", true},
		{"PUT", "/v1/tenants/acme/docs/k", true},
		{"DELETE", "/v1/tenants/acme/docs/k?x=1", true},
		{"GET", "/v1/tenants/acme/docs/a%2Fb%2E%25", true},
		{"GET", "/v1/tenants/acme/docs/", true},
		{"GET", "/v1/tenants/acme/docs/dir/", true},
		{"GET", "/v1/tenants/Not_A_Tenant/docs/k", true}, // the tenant is validated after routing
		{"GET", "/v1/tenants/acme/docs", false},
		{"POST", "/v1/tenants/acme/docs/k", false},    // 405, from the mux
		{"CONNECT", "/v1/tenants/acme/docs/k", false}, // matched unclean by the mux
		{"GET", "/v1/tenants/ac%6De/docs/k", false},
		{"GET", "/%76%31/tenants/acme/docs/k", false},
		{"GET", "/v1/tenants/acme/%64ocs/k", false},
		{"GET", "/v1/tenants/acme/conflicts/k", false},
		{"GET", "/livez", false},
	} {
		r := readRequest(tc.method, tc.target)
		if r == nil {
			t.Fatalf("%s %s: not a request", tc.method, tc.target)
		}
		if got := checkRoute(t, s, r); got != tc.routed {
			t.Errorf("%s %s: routed by the server's router %v, want %v", tc.method, tc.target, got, tc.routed)
		}
	}
}

// TestDocRouterShadowed: a mounted route that ServeMux would prefer for
// some document paths turns the router off, so that the mux picks it.
func TestDocRouterShadowed(t *testing.T) {
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, pattern := range []string{
		"HEAD /v1/tenants/{tenant}/docs/special",
		"DELETE /v1/tenants/acme/docs/{key...}",
		"PUT /v1/tenants/{t}/docs/{d}",
		"GET cairn.test/",
	} {
		s := routeServer(t, Route{Pattern: pattern, Op: "x", Access: AccessPublic, Handler: h})
		if _, _, _, _, ok := s.router.route("GET", "/v1/tenants/acme/docs/special"); ok {
			t.Errorf("with %q mounted, the router still routes document paths", pattern)
		}
	}
	for _, pattern := range []string{"GET /v1/tenants/{tenant}/other/{x}", "/v1/", "POST /v1/tenants/{tenant}/docs"} {
		s := routeServer(t, Route{Pattern: pattern, Op: "x", Access: AccessPublic, Handler: h})
		if _, _, _, _, ok := s.router.route("GET", "/v1/tenants/acme/docs/k"); !ok {
			t.Errorf("with %q mounted, the router is off; it cannot shadow the document routes", pattern)
		}
	}
}

// FuzzDocRouter compares the server's router of the document routes with
// ServeMux on random methods and request targets: wherever the router
// answers, it must choose the pattern and path values ServeMux chooses.
func FuzzDocRouter(f *testing.F) {
	for _, seed := range [][2]string{
		{"GET", "/v1/tenants/acme/docs/users/42"},
		{"HEAD", "/v1/tenants/acme/docs/a%2Fb"},
		{"PUT", "/v1/tenants/acme/docs/%2E%2E"},
		{"DELETE", "/v1/tenants/acme/docs/"},
		{"GET", "/v1/tenants/acme/docs/x%zz"},
		{"GET", "/v1/tenants/ac%2Fme/docs/x"},
		{"GET", "/v1/tenants//docs/x"},
		{"GET", "/v1/tenants/acme/docs/a//b"},
		{"GET", "/v1/tenants/acme/docs/a/./b"},
		{"GET", "http://h/v1/tenants/acme/docs/k"},
		{"OPTIONS", "/v1/tenants/acme/docs/k"},
		{"CONNECT", "/v1/tenants/acme/docs/k"},
		{"get", "/v1/tenants/acme/docs/k"},
		{"GET", "/v1/tenants/acme/conflicts/k"},
	} {
		f.Add(seed[0], seed[1])
	}
	s := routeServer(f)
	f.Fuzz(func(t *testing.T, method, target string) {
		if r := readRequest(method, target); r != nil {
			checkRoute(t, s, r)
		}
	})
}
