package server

import (
	"net/http"
	"net/url"
	"strings"
)

// docRouter routes the document routes (GET, HEAD, PUT and DELETE of
// docPath) without ServeMux, whose matching allocates for every wildcard it
// records while it walks its tree: on a cached GET that was most of the
// server's allocations. It answers only where it is sure to pick what
// ServeMux would pick, and leaves every other request to the mux:
//
//   - the path is canonical (ServeHTTP refused the rest), so ServeMux would
//     neither clean it nor redirect it;
//   - it starts with the literal "/v1/tenants/", the tenant segment has no
//     escapes and is followed by "/docs/": ServeMux unescapes segments
//     before comparing them with literals, and an escaped form of these is
//     left to it;
//   - the method is one of the four with a route of its own (CONNECT,
//     which ServeMux matches unclean, and the methods answered 405 go to
//     the mux);
//   - no other mounted pattern could match such a path more specifically
//     (a longer pattern under /v1/tenants/…/docs/, or any with a host):
//     Mount turns the router off if one is mounted.
//
// The key is the rest of the path unescaped as ServeMux unescapes a
// trailing wildcard. FuzzDocRouter compares the two on random requests.
type docRouter struct {
	get, head, put, del http.Handler // the wrapped routes; nil until mounted
	off                 bool         // a mounted pattern could shadow the document routes
}

// The document routes' patterns, as mounted (r.Pattern on a routed request).
const (
	patternGet    = "GET " + docPath
	patternHead   = "HEAD " + docPath
	patternPut    = "PUT " + docPath
	patternDelete = "DELETE " + docPath
)

// mounted records the handler of a route mounted with pattern, or turns the
// router off if pattern could take a document path from it.
func (d *docRouter) mounted(pattern string, h http.Handler) {
	switch pattern {
	case patternGet:
		d.get = h
	case patternHead:
		d.head = h
	case patternPut:
		d.put = h
	case patternDelete:
		d.del = h
	case docPath: // the method-less 405 route: less specific than the four
	default:
		if mayShadowDocs(pattern) {
			d.off = true
		}
	}
}

// route returns the handler, pattern and path values of a request with
// method and canonical escaped path p, or ok false for the mux to route.
func (d *docRouter) route(method, p string) (h http.Handler, pattern, tenant, key string, ok bool) {
	if d.off {
		return nil, "", "", "", false
	}
	switch method {
	case http.MethodGet:
		h, pattern = d.get, patternGet
	case http.MethodHead:
		h, pattern = d.head, patternHead
	case http.MethodPut:
		h, pattern = d.put, patternPut
	case http.MethodDelete:
		h, pattern = d.del, patternDelete
	}
	const prefix = "/v1/tenants/"
	if h == nil || !strings.HasPrefix(p, prefix) {
		return nil, "", "", "", false
	}
	rest := p[len(prefix):]
	i := strings.IndexByte(rest, '/')
	if i <= 0 || strings.IndexByte(rest[:i], '%') >= 0 || !strings.HasPrefix(rest[i:], "/docs/") {
		return nil, "", "", "", false
	}
	tenant, key = rest[:i], rest[i+len("/docs/"):]
	if strings.IndexByte(key, '%') >= 0 {
		// As ServeMux: unescaped, or left as it is if it does not unescape.
		if u, err := url.PathUnescape(key); err == nil {
			key = u
		}
	}
	return h, pattern, tenant, key, true
}

// mayShadowDocs reports whether a ServeMux pattern could be preferred to
// the document routes for a path they match: it has a host (host patterns
// win), or its path is compatible with /v1/tenants/{tenant}/docs/ in its
// first four segments and has more (so it may be more specific). A shorter
// pattern can match a document path only through a trailing wildcard or
// slash, which makes it less specific than docPath. Unparseable patterns
// count as shadowing: Mount refuses them anyway.
func mayShadowDocs(pattern string) bool {
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimLeft(pattern[i+1:], " \t")
	}
	if !strings.HasPrefix(pattern, "/") {
		return true // a host, or not a pattern
	}
	segs := strings.Split(pattern[1:], "/")
	want := [4]string{"v1", "tenants", "", "docs"}
	for i, w := range want {
		if i >= len(segs) {
			return false
		}
		s := segs[i]
		if strings.HasPrefix(s, "{") {
			continue // a wildcard matches any literal here ({x...} is last: then len(segs) == i+1)
		}
		if w != "" && s != w {
			if u, err := url.PathUnescape(s); err != nil || u != w {
				return false
			}
		}
	}
	return len(segs) > 4
}
