package server_test

import (
	"strings"
	"testing"
)

func TestConditionalWrites(t *testing.T) {
	e := newEnv(t)
	u := docURL(tenantA, "c")
	etag := e.put(t, tenantA, "c", `1`)
	weak := "W/" + etag
	cases := []struct {
		name   string
		method string
		hdr    []string
		absent bool // run against a missing document
		want   int
	}{
		{"if-match current", "PUT", []string{"If-Match", etag}, false, 200},
		{"if-match in list", "PUT", []string{"If-Match", `"zzz", ` + etag}, false, 200},
		{"if-match across lines", "PUT", []string{"If-Match", `"zzz"`, "If-Match", etag}, false, 200},
		{"if-match stale", "PUT", []string{"If-Match", `"stale"`}, false, 412},
		{"if-match weak never matches", "PUT", []string{"If-Match", weak}, false, 412},
		{"if-match star live", "PUT", []string{"If-Match", "*"}, false, 200},
		{"if-match star absent", "PUT", []string{"If-Match", "*"}, true, 412},
		{"if-match absent", "PUT", []string{"If-Match", etag}, true, 412},
		{"create-only absent", "PUT", []string{"If-None-Match", "*"}, true, 201},
		{"create-only exists", "PUT", []string{"If-None-Match", "*"}, false, 412},
		{"if-none-match current", "PUT", []string{"If-None-Match", etag}, false, 412},
		{"if-none-match weak current", "PUT", []string{"If-None-Match", weak}, false, 412},
		{"if-none-match other", "PUT", []string{"If-None-Match", `"other"`}, false, 200},
		{"malformed if-match", "PUT", []string{"If-Match", `abc`}, false, 400},
		{"unterminated", "PUT", []string{"If-Match", `"abc`}, false, 400},
		{"star in list", "PUT", []string{"If-Match", `*, "a"`}, false, 400},
		{"star twice", "PUT", []string{"If-Match", `*, *`}, false, 400},
		{"star on two lines", "DELETE", []string{"If-Match", `*`, "If-Match", `*`}, false, 400},
		{"empty if-match", "PUT", []string{"If-Match", ``}, false, 400},
		{"delete if-match current", "DELETE", []string{"If-Match", etag}, false, 204},
		{"delete if-match stale", "DELETE", []string{"If-Match", `"stale"`}, false, 412},
		{"delete malformed", "DELETE", []string{"If-None-Match", `W/x`}, false, 400},
		{"delete absent with if-match star", "DELETE", []string{"If-Match", "*"}, true, 412},
		{"delete absent with if-match", "DELETE", []string{"If-Match", etag}, true, 412},
		{"delete absent with if-none-match", "DELETE", []string{"If-None-Match", "*"}, true, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.mem.Delete(t.Context(), tenantA, "c", noPreValue)
			if !tc.absent {
				etagNow := e.put(t, tenantA, "c", `1`)
				for i := range tc.hdr {
					// Re-point the headers at the current ETag.
					switch tc.hdr[i] {
					case etag:
						tc.hdr[i] = etagNow
					case weak:
						tc.hdr[i] = "W/" + etagNow
					case `"zzz", ` + etag:
						tc.hdr[i] = `"zzz", ` + etagNow
					}
				}
			}
			body := ""
			if tc.method == "PUT" {
				body = `{"new":true}`
			}
			w := e.do(t, req{method: tc.method, path: u, token: e.tokA, body: body, hdr: tc.hdr})
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.want == 412 {
				if got := decodeError(t, w).Error.Code; got != "precondition_failed" {
					t.Errorf("code %q", got)
				}
			}
		})
	}
}

func TestConditionalReads(t *testing.T) {
	e := newEnv(t)
	u := docURL(tenantA, "r")
	etag := e.put(t, tenantA, "r", `{"x":1}`)
	for _, tc := range []struct {
		name   string
		method string
		hdr    []string
		want   int
	}{
		{"inm match", "GET", []string{"If-None-Match", etag}, 304},
		{"inm weak match", "GET", []string{"If-None-Match", "W/" + etag}, 304},
		{"inm list", "GET", []string{"If-None-Match", `"a", W/"b",` + etag}, 304},
		{"inm star", "GET", []string{"If-None-Match", "*"}, 304},
		{"inm other", "GET", []string{"If-None-Match", `"other"`}, 200},
		{"inm head", "HEAD", []string{"If-None-Match", etag}, 304},
		{"im match", "GET", []string{"If-Match", etag}, 200},
		{"im stale", "GET", []string{"If-Match", `"old"`}, 412},
		{"im weak", "GET", []string{"If-Match", "W/" + etag}, 412},
		{"im ok inm match", "GET", []string{"If-Match", etag, "If-None-Match", etag}, 304},
		{"malformed inm", "GET", []string{"If-None-Match", `"a" "b"`}, 400},
		{"empty inm", "GET", []string{"If-None-Match", ""}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(t, req{method: tc.method, path: u, token: e.tokA, hdr: tc.hdr})
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.want == 304 {
				if w.Header().Get("ETag") != etag || w.Body.Len() != 0 {
					t.Errorf("304: ETag %q body %q", w.Header().Get("ETag"), w.Body)
				}
			}
		})
	}
	// A malformed header is a 400 even when the document is absent.
	w := e.do(t, req{method: "GET", path: docURL(tenantA, "nope"), token: e.tokA, hdr: []string{"If-None-Match", "x"}})
	if w.Code != 400 {
		t.Errorf("malformed on absent: %d", w.Code)
	}
}

// TestDocRoutesRefuseQueries: a document route takes no query, so a key
// whose '?' a client did not percent-encode is refused, not taken for
// another document (PUT …/docs/a?b wrote "a"); nothing is stored.
func TestDocRoutesRefuseQueries(t *testing.T) {
	e := newEnv(t)
	e.put(t, tenantA, "a", `{"kept":true}`)
	for _, q := range []req{
		{method: "PUT", path: docURL(tenantA, "a") + "?b", body: `{"new":true}`},
		{method: "PUT", path: docURL(tenantA, "a") + "?", body: `{"new":true}`},
		{method: "PUT", path: docURL(tenantA, "a") + "?if_match=x", body: `{"new":true}`},
		{method: "GET", path: docURL(tenantA, "a") + "?b"},
		{method: "HEAD", path: docURL(tenantA, "a") + "?b"},
		{method: "DELETE", path: docURL(tenantA, "a") + "?b"},
		{method: "POST", path: "/v1/tenants/" + tenantA + "/conflicts/a/resolve?x=1", body: `{"delete":true}`},
		{method: "GET", path: "/v1/tenants/" + tenantA + "/conflicts/a?history=maybe"},
		{method: "GET", path: "/v1/tenants/" + tenantA + "/conflicts/a?x=1"},
	} {
		q.token = e.tokA
		w := e.do(t, q)
		if w.Code != 400 {
			t.Errorf("%s %s: status %d, want 400: %s", q.method, q.path, w.Code, w.Body)
		} else if q.method != "HEAD" && !strings.Contains(w.Body.String(), "query") && !strings.Contains(w.Body.String(), "history=") {
			t.Errorf("%s %s: the error does not name the query: %s", q.method, q.path, w.Body)
		}
	}
	if w := e.do(t, req{method: "GET", path: docURL(tenantA, "a"), token: e.tokA}); w.Code != 200 || w.Body.String() != `{"kept":true}` {
		t.Errorf("a after the refused requests: %d %s", w.Code, w.Body)
	}
	if w := e.do(t, req{method: "GET", path: docURL(tenantA, "a%3Fb"), token: e.tokA}); w.Code != 404 {
		t.Errorf("GET of the key a?b, percent-encoded: %d, want 404", w.Code)
	}
	// The refusal names what was sent but no value, which may be a
	// credential: neither the answer nor the log repeats it.
	e.logs.Reset()
	w := e.do(t, req{method: "GET", path: docURL(tenantA, "a") + "?access_token=s3cr3tvalue&b", token: e.tokA})
	if w.Code != 400 || !strings.Contains(w.Body.String(), "?access_token=…") ||
		strings.Contains(w.Body.String()+e.logs.String(), "s3cr3tvalue") {
		t.Errorf("a query holding a token: %d %s\nlog: %s", w.Code, w.Body, e.logs.String())
	}
}

// TestNoRouteNamesPathAsSent: a 404 for a path no route serves quotes it
// as sent, escapes included, so a %2F that hid a route's slash shows.
func TestNoRouteNamesPathAsSent(t *testing.T) {
	e := newEnv(t)
	w := e.do(t, req{method: "GET", path: "/v1/tenants/" + tenantA + "/docs%2Fso", token: e.tokA})
	if w.Code != 404 || !strings.Contains(w.Body.String(), "docs%2Fso") {
		t.Errorf("%d %s: want 404 quoting docs%%2Fso", w.Code, w.Body)
	}
}
