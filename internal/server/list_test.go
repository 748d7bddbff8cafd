package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
)

type listPage struct {
	Items []struct {
		Key  string `json:"key"`
		ETag string `json:"etag"`
		Size int    `json:"size"`
	} `json:"items"`
	Next string `json:"next"`
}

func (e *env) list(t *testing.T, query string) listPage {
	t.Helper()
	w := e.do(t, req{method: "GET", path: "/v1/tenants/acme/docs?" + query, token: e.tokA})
	if w.Code != 200 {
		t.Fatalf("list %s: %d %s", query, w.Code, w.Body)
	}
	var p listPage
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("list body %q: %v", w.Body, err)
	}
	return p
}

func TestListPagination(t *testing.T) {
	e := newEnv(t)
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("p/%02d", i)
		want = append(want, k)
		e.put(t, tenantA, k, `{"i":`+fmt.Sprint(i)+`}`)
	}
	e.put(t, tenantA, "q/other", `{}`)
	e.put(t, tenantB, "p/elsewhere", `{}`)

	var got []string
	after, pages := "", 0
	for {
		p := e.list(t, "prefix=p/&limit=10&after="+after)
		pages++
		for _, it := range p.Items {
			got = append(got, it.Key)
			if it.Size != len(`{"i":`)+len(it.Key[2:])-boolInt(it.Key[2] == '0')+1 || !strings.HasPrefix(it.ETag, `"`) {
				t.Errorf("item %+v", it)
			}
		}
		if p.Next == "" {
			break
		}
		if p.Next != got[len(got)-1] {
			t.Errorf("next %q, want the last key %q", p.Next, got[len(got)-1])
		}
		after = p.Next
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 3 {
		t.Errorf("%d pages, keys %v; want 3 pages, %v", pages, got, want)
	}
	// A page that ends exactly at the last key has no next.
	if p := e.list(t, "prefix=p/&limit=25"); len(p.Items) != 25 || p.Next != "" {
		t.Errorf("exact page: %d items, next %q", len(p.Items), p.Next)
	}
	// Default limit, whole tenant.
	if p := e.list(t, ""); len(p.Items) != 26 || p.Next != "" {
		t.Errorf("default: %d items next %q", len(p.Items), p.Next)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestListFormat(t *testing.T) {
	e := newEnv(t)
	w := e.do(t, req{method: "GET", path: "/v1/tenants/acme/docs", token: e.tokA})
	if got, want := w.Body.String(), "{\"items\":[\n],\"next\":\"\"}\n"; got != want {
		t.Errorf("empty listing %q, want %q", got, want)
	}
	e.put(t, tenantA, `a"<b>`, `1`)
	w = e.do(t, req{method: "GET", path: "/v1/tenants/acme/docs", token: e.tokA})
	want := "{\"items\":[\n{\"key\":\"a\\\"\\u003cb\\u003e\",\"etag\":\"\\\"1\\\"\",\"size\":1}\n],\"next\":\"\"}\n"
	if got := w.Body.String(); got != want || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("listing %q, want %q", got, want)
	}
}

func TestListQueryValidation(t *testing.T) {
	var gotLimit int
	m := &memDocs{}
	m.list = func(ctx context.Context, tenant, prefix, after string, limit int) iter.Seq2[server.Item, error] {
		gotLimit = limit
		return m.Mem.List(ctx, tenant, prefix, after, limit)
	}
	e := newEnv(t, func(o *server.Options) { o.Docs = m })
	for _, tc := range []struct {
		query     string
		status    int
		wantLimit int
	}{
		{"", 200, 101},
		{"limit=1", 200, 2},
		{"limit=1000", 200, 1001},
		{"limit=007", 200, 8},
		// One rule: plain digits from 1 to the maximum; above it, however
		// far, is refused like any other bad value.
		{"limit=1001", 400, 0},
		{"limit=5000", 400, 0},
		{"limit=99999999999999999999999999", 400, 0},
		{"limit=%2B5", 400, 0},
		{"limit=", 400, 0},
		{"limit=5.0", 400, 0},
		{"limit=%205", 400, 0},
		{"limit=0", 400, 0},
		{"limit=-3", 400, 0},
		{"limit=ten", 400, 0},
		{"prefix=%01", 400, 0},
		{"after=%FF", 400, 0},
		{"prefix=" + strings.Repeat("x", 1025), 400, 0},
		{"prefix=a&prefix=b", 400, 0}, // which one was meant is not guessed
		{"limt=5", 400, 0},            // a misspelt parameter would list everything
		{"prefix=a&cursor=b", 400, 0},
		{"y=1&x=2&limt=3", 400, 0}, // all of them named, in order
	} {
		gotLimit = 0
		w := e.do(t, req{method: "GET", path: "/v1/tenants/acme/docs?" + tc.query, token: e.tokA})
		if w.Code != tc.status || gotLimit != tc.wantLimit {
			t.Errorf("%q: status %d, Docs limit %d; want %d, %d", tc.query, w.Code, gotLimit, tc.status, tc.wantLimit)
		}
		if tc.query == "y=1&x=2&limt=3" {
			if msg := decodeError(t, w).Error.Message; !strings.Contains(msg, `unknown query parameters "limt", "x", "y"`) {
				t.Errorf("%q: message %q does not name every unknown parameter in order", tc.query, msg)
			}
		} else if w.Code == 400 && (strings.HasPrefix(tc.query, "limt") || strings.Contains(tc.query, "cursor")) {
			if msg := decodeError(t, w).Error.Message; !strings.Contains(msg, "unknown query parameter") {
				t.Errorf("%q: message %q does not name the unknown parameter", tc.query, msg)
			}
		} else if w.Code == 400 && strings.Count(tc.query, "=") > 1 {
			if msg := decodeError(t, w).Error.Message; !strings.Contains(msg, "more than once") {
				t.Errorf("%q: message %q does not name the repeated parameter", tc.query, msg)
			}
		}
		if w.Code == 400 && strings.HasPrefix(tc.query, "limit") && !strings.Contains(tc.query, "&") {
			if msg := decodeError(t, w).Error.Message; !strings.Contains(msg, "from 1 to 1000 in plain digits") {
				t.Errorf("%q: message %q does not state the rule", tc.query, msg)
			}
		}
	}
}

// slowList yields rows on demand: each receive on step lets one more row
// out; closing it ends the listing. Then it fails with err, if set.
type slowList struct {
	step chan struct{}
	err  error
	tick func() // called before each row after the first
}

func (s *slowList) seq(context.Context, string, string, string, int) iter.Seq2[server.Item, error] {
	return func(yield func(server.Item, error) bool) {
		for i := 0; ; i++ {
			if _, ok := <-s.step; !ok {
				break
			}
			if i > 0 && s.tick != nil {
				s.tick()
			}
			if !yield(server.Item{Key: fmt.Sprintf("k%03d", i), ETag: `"e"`, Size: i}, nil) {
				return
			}
		}
		if s.err != nil {
			yield(server.Item{}, s.err)
		}
	}
}

// readUntil reads the stream until it has seen marker, failing on error.
func readUntil(t *testing.T, br *bufio.Reader, marker string) {
	t.Helper()
	var seen strings.Builder
	for !strings.Contains(seen.String(), marker) {
		b, err := br.ReadByte()
		if err != nil {
			t.Fatalf("reading stream for %q: %v (have %q)", marker, err, seen.String())
		}
		seen.WriteByte(b)
	}
}

// TestListStreams proves rows reach the client while Docs is still
// iterating: the fake yields a row and then blocks until the test has read
// that row off the wire. Buffering the page would deadlock (bounded by the
// request context).
func TestListStreams(t *testing.T) {
	var clock atomic.Int64
	sl := &slowList{step: make(chan struct{}), tick: func() { clock.Add(int64(time.Second)) }}
	m := &memDocs{list: sl.seq}
	e := newEnv(t, func(o *server.Options) { o.Docs = m })
	server.SetClock(e.srv, func() time.Time { return time.Unix(0, clock.Load()) })
	ts := httptest.NewServer(e.srv)
	defer ts.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	r, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/tenants/acme/docs?limit=10", nil)
	r.Header.Set("Authorization", "Bearer "+e.tokA)
	go func() { sl.step <- struct{}{} }() // let the first row out; the header is sent with it
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// Row 0 is flushed at once, and rows after a pause (the fake clock
	// advances a second before each) are flushed too.
	for i := range 3 {
		readUntil(t, br, fmt.Sprintf(`"key":"k%03d"`, i))
		sl.step <- struct{}{}
	}
	readUntil(t, br, `"key":"k003"`)
	close(sl.step)
	rest, err := io.ReadAll(br)
	if err != nil || !strings.HasSuffix(string(rest), `],"next":""}`+"\n") {
		t.Errorf("tail %q, %v", rest, err)
	}
}

// TestListMidStreamError: after rows went out, a failure is written in-band
// and the connection aborted, so the client cannot take the page as whole.
func TestListMidStreamError(t *testing.T) {
	sl := &slowList{step: make(chan struct{}, 2), err: fault.New(fault.Transient, fault.Context{Op: "store.iter"}, "iterator failed")}
	sl.step <- struct{}{}
	sl.step <- struct{}{}
	close(sl.step)
	m := &memDocs{list: sl.seq}
	e := newEnv(t, func(o *server.Options) { o.Docs = m })
	ts := httptest.NewServer(e.srv)
	defer ts.Close()

	r, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL+"/v1/tenants/acme/docs", nil)
	r.Header.Set("Authorization", "Bearer "+e.tokA)
	r.Header.Set("X-Request-ID", "mid")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || err == nil {
		t.Fatalf("status %d, read error %v; want 200 and a failed read", resp.StatusCode, err)
	}
	want := "{\"items\":[\n{\"key\":\"k000\",\"etag\":\"\\\"e\\\"\",\"size\":0},\n{\"key\":\"k001\",\"etag\":\"\\\"e\\\"\",\"size\":1}\n]," +
		`"error":{"code":"transient","message":"iterator failed","request_id":"mid"}`
	if string(body) != want {
		t.Errorf("body\n%q\nwant\n%q", body, want)
	}
	if json.Valid(body) {
		t.Error("a failed listing parsed as valid JSON")
	}
	ts.Close() // the handler has returned; its log line is written
	recs := e.logs.records(t)
	if len(recs) != 1 || recs[0]["class"] != "transient" || recs[0]["level"] != "ERROR" || recs[0]["request_id"] != "mid" {
		t.Errorf("logs %v", recs)
	}
}

// TestListErrorBeforeFirstRow is an ordinary error answer.
func TestListErrorBeforeFirstRow(t *testing.T) {
	sl := &slowList{step: make(chan struct{}), err: exhausted(0)}
	close(sl.step)
	e := newEnv(t, func(o *server.Options) { o.Docs = &memDocs{list: sl.seq} })
	w := e.do(t, req{method: "GET", path: "/v1/tenants/acme/docs", token: e.tokA})
	if w.Code != 503 || decodeError(t, w).Error.Code != "exhausted" || w.Header().Get("Retry-After") != "1" {
		t.Errorf("%d %s %v", w.Code, w.Body, w.Header())
	}
}

// TestDrain: readiness flips, in-flight requests finish, new ones are refused.
func TestDrain(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	m := &memDocs{get: func(context.Context, string, string) (server.Doc, error) {
		close(entered)
		<-release
		return server.Doc{ETag: `"x"`, Body: []byte(`{}`)}, nil
	}}
	e := newEnv(t, func(o *server.Options) { o.Docs = m })
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = e.srv.HTTPServer("")
	ts.Start()
	defer ts.Close()

	got := make(chan int, 1)
	go func() {
		r, _ := http.NewRequest("GET", ts.URL+docURL(tenantA, "k"), nil)
		r.Header.Set("Authorization", "Bearer "+e.tokA)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-entered
	done := make(chan error, 1)
	go func() { done <- e.srv.Drain(t.Context(), ts.Config) }()
	// Drain flips readiness before it waits.
	for w := e.do(t, req{method: "GET", path: "/readyz"}); w.Code != 503; w = e.do(t, req{method: "GET", path: "/readyz"}) {
		select {
		case err := <-done:
			t.Fatalf("Drain returned %v with a request in flight", err)
		default:
		}
	}
	close(release)
	if code := <-got; code != 200 {
		t.Errorf("in-flight request: %d", code)
	}
	if err := <-done; err != nil {
		t.Errorf("Drain: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestListStopsWhenClientLeaves: once the client hangs up, the server stops
// pulling rows from Docs.
func TestListStopsWhenClientLeaves(t *testing.T) {
	stopped := make(chan int, 1)
	endless := func(ctx context.Context, _, _, _ string, _ int) iter.Seq2[server.Item, error] {
		return func(yield func(server.Item, error) bool) {
			for i := 0; i < 10_000_000; i++ {
				if !yield(server.Item{Key: fmt.Sprintf("k%09d", i), ETag: `"e"`, Size: i}, nil) {
					stopped <- i
					return
				}
			}
			stopped <- -1
		}
	}
	e := newEnv(t, func(o *server.Options) {
		o.Docs = &memDocs{list: endless}
		o.MaxListLimit = 10_000_000
	})
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	ctx, cancel := context.WithCancel(t.Context())
	r, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/tenants/acme/docs?limit=9999999", nil)
	r.Header.Set("Authorization", "Bearer "+e.tokA)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	readUntil(t, bufio.NewReader(resp.Body), `"key":"k000000000"`)
	cancel()
	resp.Body.Close()
	select {
	case n := <-stopped:
		if n < 0 {
			t.Error("the listing ran to its end after the client left")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the listing still runs 20s after the client left")
	}
}

// TestQueryCredentialNotRepeated: a query that is a bare credential
// (?TOKEN, no name=value) is refused on a document route and on a listing
// without the credential in the answer; a parameter's name is still shown.
func TestQueryCredentialNotRepeated(t *testing.T) {
	e := newEnv(t)
	const secret = "acmeTOKENsecret_aaaaaaaaaaaaaaaaaaaa1"
	for _, path := range []string{docURL(tenantA, "k") + "?" + secret, "/v1/tenants/acme/docs?" + secret, "/v1/tenants/acme/docs?limit=2&" + secret + "=1"} {
		w := e.do(t, req{method: "GET", path: path, token: e.tokA})
		if w.Code != 400 || strings.Contains(w.Body.String(), "TOKENsecret") || !strings.Contains(w.Body.String(), "not repeated") {
			t.Errorf("GET %s: %d %s; want 400 without the credential", path, w.Code, w.Body)
		}
	}
	w := e.do(t, req{method: "GET", path: "/v1/tenants/acme/docs?prefx=a", token: e.tokA})
	if w.Code != 400 || !strings.Contains(w.Body.String(), `unknown query parameter \"prefx\"`) {
		t.Errorf("GET ?prefx=a: %d %s; want 400 naming prefx", w.Code, w.Body)
	}
	w = e.do(t, req{method: "GET", path: docURL(tenantA, "k") + "?v=1", token: e.tokA})
	if w.Code != 400 || !strings.Contains(w.Body.String(), "('?v=…')") {
		t.Errorf("GET doc?v=1: %d %s; want 400 showing ?v=…", w.Code, w.Body)
	}
}
