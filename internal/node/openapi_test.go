package node

import (
	"context"
	"crypto/sha256"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/server"
)

// describedRoutes are the server routes api/openapi.json names, by
// listener ("api", "admin"): each operation's x-cairn-route on its
// x-cairn-listener (and on x-cairn-also), and each path's x-cairn-guard.
// prefixes are the x-cairn-routes-under of path items that describe a
// whole subtree (an HTML application) as one.
func describedRoutes(t *testing.T) (routes map[string][]string, prefixes map[string][]string) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("api/openapi.json does not load: %v", err)
	}
	if doc.OpenAPIMajorMinor() != "3.1" {
		t.Fatalf("api/openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.json is not valid OpenAPI: %v", err)
	}
	str := func(ext map[string]any, key string) string { s, _ := ext[key].(string); return s }
	routes, prefixes = map[string][]string{}, map[string][]string{}
	for path, item := range doc.Paths.Map() {
		if p := str(item.Extensions, "x-cairn-routes-under"); p != "" {
			l := str(item.Extensions, "x-cairn-listener")
			prefixes[l] = append(prefixes[l], p)
		}
		var listeners []string
		for method, op := range item.Operations() {
			route, l := str(op.Extensions, "x-cairn-route"), str(op.Extensions, "x-cairn-listener")
			if route == "" || (l != "api" && l != "admin") {
				t.Errorf("%s %s: no x-cairn-route, or x-cairn-listener %q is not api or admin", method, path, l)
				continue
			}
			for _, l := range []string{l, str(op.Extensions, "x-cairn-also")} {
				if l != "" {
					routes[l] = append(routes[l], route)
					listeners = append(listeners, l)
				}
			}
		}
		if g := str(item.Extensions, "x-cairn-guard"); g != "" {
			for _, l := range slices.Compact(listeners) {
				routes[l] = append(routes[l], g)
			}
		}
	}
	return routes, prefixes
}

// TestOpenAPIDescribesEveryRoute: every route either listener of a node
// with every optional part on (a backend, the fault simulator, an admin
// token) serves is described in api/openapi.json, and every route the
// description names is served. A path's method-less 405 guard is covered
// by a described operation on that path; the catch-all "/" by the
// document's x-cairn-fallback.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	described, prefixes := describedRoutes(t)
	sum := sha256.Sum256([]byte("cairn_openapi_admin"))
	cfg := testConfig(t)
	cfg.Auth = server.Auth{Admin: [][32]byte{sum}}
	cfg.Replication = Replication{Backends: []BackendSpec{{Name: "local", URL: "fs:" + t.TempDir()}}}
	cfg.Chaos = &Chaos{Seed: 1}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	apiRoutes, adminRoutes := n.Routes()
	served := map[string][]server.RouteInfo{"api": apiRoutes, "admin": adminRoutes}
	for l, routes := range served {
		if len(routes) < 8 {
			t.Fatalf("%s listener: only %d routes", l, len(routes))
		}
		for _, rt := range routes {
			if !covered(rt.Pattern, described[l], prefixes[l]) {
				t.Errorf("%s listener serves %q, which api/openapi.json does not describe (an HTML subtree may be described as one path item with x-cairn-routes-under)", l, rt.Pattern)
			}
		}
		for _, d := range described[l] {
			if !slices.ContainsFunc(routes, func(rt server.RouteInfo) bool { return rt.Pattern == d }) {
				t.Errorf("api/openapi.json describes %q on the %s listener, which it does not serve", d, l)
			}
		}
		for _, p := range prefixes[l] {
			if !slices.ContainsFunc(routes, func(rt server.RouteInfo) bool { return strings.HasPrefix(routePath(rt.Pattern), p) }) {
				t.Errorf("api/openapi.json describes the subtree %q on the %s listener, which serves nothing under it", p, l)
			}
		}
	}
	var fallback any
	if doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI); err == nil {
		fallback = doc.Extensions["x-cairn-fallback"]
	}
	if fallback == nil {
		t.Error(`both listeners serve the catch-all "/" (404), which api/openapi.json's x-cairn-fallback does not describe`)
	}
}

// routePath is a ServeMux pattern's path.
func routePath(pattern string) string {
	if _, p, ok := strings.Cut(pattern, " "); ok {
		return p
	}
	return pattern
}

func covered(pattern string, described, prefixes []string) bool {
	if pattern == "/" || slices.Contains(described, pattern) {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(routePath(pattern), p) {
			return true
		}
	}
	if strings.Contains(pattern, " ") {
		return false
	}
	// A method-less pattern of a path whose methods are described: the
	// guard that answers its other methods with 405.
	return slices.ContainsFunc(described, func(d string) bool { return routePath(d) == pattern && d != pattern })
}
