package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/server"
)

// twoSiblings is a conflict on key: a live version and a delete.
func twoSiblings(key string) server.Conflict {
	t0 := time.UnixMilli(1700000000000)
	return server.Conflict{Key: key, ETag: `"set"`, Siblings: []server.Sibling{
		{ETag: `"s1"`, Writer: 0xa, Time: t0, Size: 7, Body: []byte(`{"a":1}`)},
		{ETag: `"s2"`, Deleted: true, Writer: 0xb, Time: t0},
	}}
}

func conflictURL(tenant, key string) string { return "/v1/tenants/" + tenant + "/conflicts/" + key }

type conflictJSON struct {
	Key      string `json:"key"`
	ETag     string `json:"etag"`
	Siblings []struct {
		ETag    string          `json:"etag"`
		Deleted bool            `json:"deleted"`
		Writer  string          `json:"writer"`
		Time    string          `json:"time"`
		Size    int             `json:"size"`
		Body    json.RawMessage `json:"body"`
	} `json:"siblings"`
}

// TestConflictAnswers: a document with open siblings answers 409 to GET,
// HEAD and a blind write, naming the siblings in the body and in
// X-Cairn-Siblings; a listing marks it.
func TestConflictAnswers(t *testing.T) {
	e := newEnv(t)
	e.mem.SetConflict(tenantA, twoSiblings("k"))
	tests := []struct {
		name, method, body string
		hdr                []string
		want               int
	}{
		{"get", "GET", "", nil, 409},
		{"head", "HEAD", "", nil, 409},
		{"get if-none-match", "GET", "", []string{"If-None-Match", `"set"`}, 409},
		{"blind put", "PUT", `{"x":1}`, nil, 409},
		{"put if-match *", "PUT", `{"x":1}`, []string{"If-Match", "*"}, 409},
		{"put stale if-match", "PUT", `{"x":1}`, []string{"If-Match", `"old"`}, 412},
		{"blind delete", "DELETE", "", nil, 409},
	}
	for _, tt := range tests {
		w := e.do(t, req{method: tt.method, path: docURL(tenantA, "k"), token: e.tokA, body: tt.body, hdr: tt.hdr})
		if w.Code != tt.want {
			t.Fatalf("%s: %d %s, want %d", tt.name, w.Code, w.Body, tt.want)
		}
		if tt.want != 409 {
			continue
		}
		if got := w.Header().Get("X-Cairn-Siblings"); got != `"s1", "s2"` {
			t.Errorf("%s: X-Cairn-Siblings %q", tt.name, got)
		}
		if tt.method == "HEAD" {
			continue
		}
		var body struct {
			Error struct {
				Code     string   `json:"code"`
				ETag     string   `json:"etag"`
				Siblings []string `json:"siblings"`
			} `json:"error"`
		}
		decodeError(t, w)
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if b := body.Error; b.Code != "conflict" || b.ETag != `"set"` || strings.Join(b.Siblings, " ") != `"s1" "s2"` {
			t.Errorf("%s: error %+v", tt.name, b)
		}
	}
	w := e.do(t, req{method: "GET", path: "/v1/tenants/acme/docs", token: e.tokA})
	if !strings.Contains(w.Body.String(), `{"key":"k","etag":"\"set\"","size":0,"conflict":true}`) {
		t.Errorf("listing does not mark the conflict: %s", w.Body)
	}
}

func TestConflictListAndGet(t *testing.T) {
	e := newEnv(t)
	for _, k := range []string{"a", "b/1", "c"} {
		e.mem.SetConflict(tenantA, twoSiblings(k))
	}
	e.put(t, tenantA, "plain", `{}`)
	w := e.do(t, req{method: "GET", path: "/v1/tenants/acme/conflicts?limit=2", token: e.tokA})
	var page struct {
		Items []conflictJSON `json:"items"`
		Next  string         `json:"next"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != 200 {
		t.Fatalf("list: %d %s (%v)", w.Code, w.Body, err)
	}
	if len(page.Items) != 2 || page.Items[0].Key != "a" || page.Items[1].Key != "b/1" || page.Next != "b/1" {
		t.Fatalf("page %+v", page)
	}
	s := page.Items[0].Siblings
	if len(s) != 2 || s[0].ETag != `"s1"` || s[0].Writer != "a" || s[0].Size != 7 || s[0].Body != nil ||
		!s[1].Deleted || s[0].Time != "2023-11-14T22:13:20Z" {
		t.Fatalf("listed siblings %+v", s)
	}
	w = e.do(t, req{method: "GET", path: "/v1/tenants/acme/conflicts?after=b%2F1", token: e.tokA})
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || len(page.Items) != 1 || page.Items[0].Key != "c" || page.Next != "" {
		t.Fatalf("second page: %s", w.Body)
	}
	w = e.do(t, req{method: "GET", path: "/v1/tenants/acme/conflicts?limit=0", token: e.tokA})
	if w.Code != 400 || !strings.Contains(decodeError(t, w).Error.Message, "limit") {
		t.Fatalf("limit=0: %d %s", w.Code, w.Body)
	}

	w = e.do(t, req{method: "GET", path: conflictURL(tenantA, "b%2F1"), token: e.tokA})
	var one conflictJSON
	if err := json.Unmarshal(w.Body.Bytes(), &one); err != nil || w.Code != 200 {
		t.Fatalf("get: %d %s (%v)", w.Code, w.Body, err)
	}
	if one.Key != "b/1" || string(one.Siblings[0].Body) != `{"a":1}` || string(one.Siblings[1].Body) != "null" {
		t.Fatalf("get: %s", w.Body)
	}
	if w := e.do(t, req{method: "GET", path: conflictURL(tenantA, "plain"), token: e.tokA}); w.Code != 404 {
		t.Fatalf("get of a key without siblings: %d %s", w.Code, w.Body)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name, key, body string
		want            int
		after           string // the document's body afterwards; "" when deleted
	}{
		{"choose live", "k", `{"choose":"\"s1\""}`, 200, `{"a":1}`},
		{"choose unquoted", "k", `{"choose":"s1"}`, 200, `{"a":1}`},
		{"choose the delete", "k", `{"choose":"s2"}`, 204, ""},
		{"new body", "k", `{"body":{"merged":true}}`, 200, `{"merged":true}`},
		{"delete", "k", `{"delete":true}`, 204, ""},
		{"key ending in /resolve", "k%2Fresolve", `{"choose":"s1"}`, 200, `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			key := strings.ReplaceAll(tt.key, "%2F", "/")
			e.mem.SetConflict(tenantA, twoSiblings(key))
			w := e.do(t, req{method: "POST", path: conflictURL(tenantA, tt.key) + "/resolve", token: e.tokA, body: tt.body})
			if w.Code != tt.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.want)
			}
			if tt.want == 200 {
				var out struct{ Key, ETag string }
				if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Key != key || out.ETag != w.Header().Get("ETag") {
					t.Fatalf("answer %s (%v)", w.Body, err)
				}
			}
			g := e.do(t, req{method: "GET", path: docURL(tenantA, tt.key), token: e.tokA})
			switch {
			case tt.after == "" && g.Code != 404:
				t.Fatalf("after resolving by a delete, GET: %d %s", g.Code, g.Body)
			case tt.after != "" && (g.Code != 200 || g.Body.String() != tt.after):
				t.Fatalf("after resolving, GET: %d %s, want %s", g.Code, g.Body, tt.after)
			}
			if w := e.do(t, req{method: "POST", path: conflictURL(tenantA, tt.key) + "/resolve", token: e.tokA, body: tt.body}); w.Code != 404 {
				t.Fatalf("resolving again: %d %s, want 404", w.Code, w.Body)
			}
		})
	}
}

// TestResolveIfMatch: If-Match pins the sibling set the client read: the
// set's ETag resolves, another is 412 and nothing is written, * or none
// resolves whatever the set is, and more than one ETag is a 400.
func TestResolveIfMatch(t *testing.T) {
	for _, tc := range []struct {
		ifMatch []string
		want    int
	}{
		{[]string{`"set"`}, 200},
		{[]string{`"stale"`}, 412},
		{[]string{`W/"set"`}, 412},
		{[]string{"*"}, 200},
		{nil, 200},
		{[]string{`"set", "other"`}, 400},
		{[]string{`set`}, 400},
	} {
		e := newEnv(t)
		e.mem.SetConflict(tenantA, twoSiblings("k"))
		var hdr []string
		for _, v := range tc.ifMatch {
			hdr = append(hdr, "If-Match", v)
		}
		w := e.do(t, req{method: "POST", path: conflictURL(tenantA, "k") + "/resolve", token: e.tokA, body: `{"body":{"r":1}}`, hdr: hdr})
		if w.Code != tc.want {
			t.Errorf("If-Match %q: %d %s, want %d", tc.ifMatch, w.Code, w.Body, tc.want)
		}
		g := e.do(t, req{method: "GET", path: conflictURL(tenantA, "k"), token: e.tokA})
		if stillOpen := g.Code == 200; stillOpen != (tc.want != 200) {
			t.Errorf("If-Match %q: the conflict afterwards: %d, want it open only when refused", tc.ifMatch, g.Code)
		}
	}
}

// TestResolveBadInput: every refusal is a 4xx naming the problem, and
// nothing is written.
func TestResolveBadInput(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.MaxBodyBytes = 64 })
	e.mem.SetConflict(tenantA, twoSiblings("k"))
	big := `{"body":{"x":"` + strings.Repeat("y", 100) + `"}}`
	tests := []struct {
		name, path, body string
		want             int
		msg              string
	}{
		{"empty", "k/resolve", "", 400, "empty body"},
		{"not json", "k/resolve", `{choose}`, 400, "request body"},
		{"byte order mark", "k/resolve", "\xEF\xBB\xBF" + `{"delete":true}`, 400, "byte order mark"},
		{"unknown field", "k/resolve", `{"pick":"s1"}`, 400, `unknown member "pick"`},
		{"name in another case", "k/resolve", `{"Delete":true}`, 400, `unknown member "Delete"`},
		{"member twice", "k/resolve", `{"choose":"s1","choose":"s2"}`, 400, `"choose" given more than once`},
		{"two members", "k/resolve", `{"choose":"s1","delete":true}`, 400, "exactly one"},
		{"none", "k/resolve", `{}`, 400, "exactly one"},
		{"delete false", "k/resolve", `{"delete":false}`, 400, `"delete" must be true`},
		{"null body", "k/resolve", `{"body":null}`, 400, "not null"},
		{"trailing value", "k/resolve", `{"delete":true} {}`, 400, "more than one"},
		{"not a sibling", "k/resolve", `{"choose":"s9"}`, 400, `"s1", "s2"`},
		{"bad document", "k/resolve", `{"body":[1,]}`, 400, "request body"},
		{"too large", "k/resolve", big, 413, "larger than 64"},
		{"no suffix", "k", `{"delete":true}`, 400, "/resolve"},
		{"no key", "resolve", `{"delete":true}`, 400, "/resolve"},
		{"bad key", "a%00b/resolve", `{"delete":true}`, 400, "key"},
		{"no conflict", "other/resolve", `{"delete":true}`, 404, "no open siblings"},
	}
	for _, tt := range tests {
		writes := e.mem.Writes()
		w := e.do(t, req{method: "POST", path: conflictURL(tenantA, tt.path), token: e.tokA, body: tt.body})
		if w.Code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, w.Code, w.Body, tt.want)
			continue
		}
		if msg := decodeError(t, w).Error.Message; !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: message %q, want it to name %q", tt.name, msg, tt.msg)
		}
		if e.mem.Writes() != writes {
			t.Errorf("%s: a refused resolution wrote", tt.name)
		}
	}
	if w := e.do(t, req{method: "PUT", path: conflictURL(tenantA, "k"), token: e.tokA, body: "{}"}); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT on a conflict: %d", w.Code)
	}
}

func TestConflictHistory(t *testing.T) {
	e := newEnv(t)
	t0 := time.UnixMilli(1700000000000)
	e.mem.AddHistory(tenantA, "k", server.Lost{Winner: `"w"`, Reason: "lww", Sibling: server.Sibling{
		ETag: `"l1"`, Writer: 0xa, Time: t0, Size: 7, Body: []byte(`{"a":1}`)}})
	e.mem.AddHistory(tenantA, "k", server.Lost{Winner: `"w"`, Reason: "resolved", Sibling: server.Sibling{
		ETag: `"l2"`, Deleted: true, Time: t0}})
	w := e.do(t, req{method: "GET", path: conflictURL(tenantA, "k") + "?history", token: e.tokA})
	want := `{"items":[` + "\n" + `{"etag":"\"l1\"","deleted":false,"writer":"a","time":"2023-11-14T22:13:20Z","size":7,"body":{"a":1},"winner":"\"w\"","reason":"lww"},` +
		"\n" + `{"etag":"\"l2\"","deleted":true,"writer":"0","time":"2023-11-14T22:13:20Z","size":0,"body":null,"winner":"\"w\"","reason":"resolved"}` +
		"\n" + `],"next":""}` + "\n"
	if w.Code != 200 || w.Body.String() != want {
		t.Fatalf("history: %d\n%s\nwant\n%s", w.Code, w.Body, want)
	}
	w = e.do(t, req{method: "GET", path: conflictURL(tenantA, "none") + "?history=1", token: e.tokA})
	if w.Code != 200 || w.Body.String() != "{\"items\":[\n],\"next\":\"\"}\n" {
		t.Fatalf("empty history: %d %q", w.Code, w.Body)
	}
}

// FuzzResolve drives the resolution endpoint with arbitrary bodies: it never
// answers 5xx, never writes on a 4xx, and what a 2xx stored is valid JSON
// (or a delete).
func FuzzResolve(f *testing.F) {
	for _, s := range []string{`{"choose":"s1"}`, `{"choose":"\"s2\""}`, `{"body":{"a":[1,2]}}`, `{"delete":true}`,
		`{"body":1e9999}`, `{"choose":null}`, `{"body":"x","body":"y"}`, `[]`, `{"body":{"a":1}}x`, "\xff"} {
		f.Add([]byte(s))
	}
	docs := &countingDocs{}
	e := newEnv(f, func(o *server.Options) {
		o.Docs = docs
		o.MaxBodyBytes = 256
		o.MaxDepth = 4
	})
	f.Fuzz(func(t *testing.T, body []byte) {
		docs.SetConflict(tenantA, twoSiblings("k"))
		before := docs.stored.Load()
		w := e.do(t, req{method: "POST", path: conflictURL(tenantA, "k") + "/resolve", token: e.tokA, body: string(body)})
		switch {
		case w.Code >= 500:
			t.Fatalf("%q: %d %s", body, w.Code, w.Body)
		case w.Code >= 400:
			if docs.stored.Load() != before {
				t.Fatalf("%q: stored on %d", body, w.Code)
			}
			decodeError(t, w)
		case w.Code == 200:
			g := e.do(t, req{method: "GET", path: docURL(tenantA, "k"), token: e.tokA})
			if g.Code != 200 || !json.Valid(g.Body.Bytes()) {
				t.Fatalf("%q: resolved to %d %q", body, g.Code, g.Body)
			}
		}
	})
}
