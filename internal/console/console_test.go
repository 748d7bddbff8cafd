package console

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/cairnstore/cairn/api/chaosapi"
	"github.com/cairnstore/cairn/internal/chaos"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/servertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const admin = "cairn_unit-test-admin-token"

// fakeNode is a Node with one tenant, and anc as every conflict's
// ancestor when set.
type fakeNode struct {
	counted *int
	anc     *Ancestor
}

func (n fakeNode) Tenants(context.Context) ([]Tenant, error) {
	if n.counted != nil {
		*n.counted++
	}
	return []Tenant{{Name: "acme", Policy: "manual", Docs: 1}}, nil
}
func (fakeNode) Document(_ context.Context, tenant, key string) (Document, error) {
	return Document{}, fault.New(fault.NotFound, fault.Context{Op: "fake", Tenant: tenant, Key: key}, "document not found")
}
func (fakeNode) StoreBytes() int64 { return 42 }
func (n fakeNode) Ancestor(context.Context, string, string) (Ancestor, bool, error) {
	if n.anc == nil {
		return Ancestor{}, false, nil
	}
	return *n.anc, true, nil
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	c     *Console
	h     http.Handler // the admin server with the console mounted
	mem   *servertest.Mem
	clock *clock
	spent int // failed authentications counted
}

func newFixture(t testing.TB, edit func(*Options)) *fixture {
	t.Helper()
	f := &fixture{mem: &servertest.Mem{}, clock: &clock{t: time.Unix(1_700_000_000, 0)}}
	auth := server.Auth{Admin: [][32]byte{server.HashToken(admin)}}
	apiSrv, err := server.New(server.Options{Docs: f.mem, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{API: apiSrv, Docs: f.mem, Node: fakeNode{}, Registry: prometheus.NewRegistry(),
		IsAdmin: apiSrv.IsAdmin, Now: f.clock.now, NodeID: "n1", Version: "test",
		AuthFailed: func() (bool, time.Duration) { f.spent++; return f.spent <= 3, 2 * time.Second }}
	if edit != nil {
		edit(&o)
	}
	if f.c, err = New(o); err != nil {
		t.Fatal(err)
	}
	adm, err := server.NewAdmin(server.AdminOptions{Auth: auth, Console: f.c})
	if err != nil {
		t.Fatal(err)
	}
	f.h = adm
	return f
}

// req serves one request from remote (host:port) and returns the answer.
func (f *fixture) req(method, target, remote string, ck *http.Cookie, body string, hdr map[string]string) (*http.Response, string) {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = remote
	r.Host = "127.0.0.1:7071" // as a browser on this machine addresses a loopback admin listener
	if ck != nil {
		r.AddCookie(ck)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	resp := w.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var formHdr = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

const (
	local  = "127.0.0.1:5000"
	remote = "192.0.2.7:5000" // TEST-NET-1: beyond loopback
)

func (f *fixture) signIn(t *testing.T, from, tok string) (*http.Cookie, string) {
	t.Helper()
	resp, body := f.req("POST", "/console/signin", from, nil, url.Values{"token": {tok}}.Encode(), formHdr)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("sign-in from %s: %d %s", from, resp.StatusCode, body)
	}
	ck := resp.Cookies()[0]
	_, page := f.req("GET", "/console/overview", from, ck, "", nil)
	m := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return ck, m[1]
}

// TestOpenOnlyFromLoopback: a node without an admin token lets loopback
// clients in without one, and no one else.
func TestOpenOnlyFromLoopback(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Open = true })
	if resp, body := f.req("POST", "/console/signin", remote, nil, "", formHdr); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("open sign-in from beyond loopback: %d %s", resp.StatusCode, body)
	}
	for _, p := range []string{"/console/api/overview", "/console/api/tenants", "/console/api/docs?tenant=acme"} {
		if resp, _ := f.req("GET", p, remote, nil, "", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s from beyond loopback: %d", p, resp.StatusCode)
		}
	}
	if resp, _ := f.req("GET", "/console/overview", remote, nil, "", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a page from beyond loopback: %d", resp.StatusCode)
	}
	ck, _ := f.signIn(t, local, "")
	if resp, body := f.req("GET", "/console/api/tenants", local, ck, "", nil); resp.StatusCode != 200 || !strings.Contains(body, `"acme"`) {
		t.Fatalf("tenants after an open sign-in: %d %s", resp.StatusCode, body)
	}
	// Chaos control stays refused without an admin token, as on the API.
	if resp, _ := f.req("POST", "/console/api/chaos?backend=x", local, ck, "{}", nil); resp.StatusCode == 200 {
		t.Fatal("chaos control without an admin token succeeded")
	}
}

// TestSignInWithToken: a node with an admin token signs in only with it,
// never echoes what was sent, and spends the failed-authentication budget.
func TestSignInWithToken(t *testing.T) {
	f := newFixture(t, nil)
	for _, from := range []string{local, remote} {
		resp, body := f.req("POST", "/console/signin", from, nil, "token=cairn_not-it", formHdr)
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "cairn_not-it") || len(resp.Cookies()) != 0 {
			t.Fatalf("wrong token from %s: %d %s", from, resp.StatusCode, body)
		}
	}
	ck, _ := f.signIn(t, remote, admin)
	if resp, _ := f.req("GET", "/console/api/overview", remote, ck, "", nil); resp.StatusCode != 200 {
		t.Fatalf("overview with a session: %d", resp.StatusCode)
	}
	f.spent = 10 // the budget is spent
	resp, _ := f.req("POST", "/console/signin", local, nil, "token=x", formHdr)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("sign-in past the budget: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Cross-origin sign-in is refused (login CSRF).
	resp, _ = f.req("POST", "/console/signin", local, nil, "token="+admin, map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"})
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Fatalf("cross-origin sign-in: %d", resp.StatusCode)
	}
}

// TestSignInKeepsThePage: a page asked for without a session sends the
// browser to sign in and back to the same page and query (the tenant and
// key shown); a destination outside the console's pages is not followed.
func TestSignInKeepsThePage(t *testing.T) {
	f := newFixture(t, nil)
	resp, _ := f.req("GET", "/console/documents?tenant=acme&key=a%2Fb", local, nil, "", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc != "/console/signin?next="+url.QueryEscape("/console/documents?tenant=acme&key=a%2Fb") {
		t.Fatalf("a page without a session: %d, Location %q", resp.StatusCode, loc)
	}
	for next, want := range map[string]string{
		"/console/documents?tenant=acme&key=a%2Fb": "/console/documents?key=a%2Fb&tenant=acme",
		"/console/conflicts":                       "/console/conflicts",
		"//evil.example/console/documents":         "/console/overview",
		"/console/documents/../../x?tenant=acme":   "/console/overview",
		"https://evil.example/?/console/overview":  "/console/overview",
	} {
		resp, body := f.req("POST", "/console/signin", local, nil, url.Values{"token": {admin}, "next": {next}}.Encode(), formHdr)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("sign-in with next %q: %d, Location %q, want %q: %s", next, resp.StatusCode, resp.Header.Get("Location"), want, body)
		}
	}
}

// TestSessionExpires: a session ends at its expiry.
func TestSessionExpires(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.SessionTTL = time.Hour })
	ck, _ := f.signIn(t, local, admin)
	f.clock.add(59 * time.Minute)
	if resp, _ := f.req("GET", "/console/api/overview", local, ck, "", nil); resp.StatusCode != 200 {
		t.Fatalf("before expiry: %d", resp.StatusCode)
	}
	f.clock.add(time.Minute)
	if resp, _ := f.req("GET", "/console/api/overview", local, ck, "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("at expiry: %d", resp.StatusCode)
	}
}

// TestSessionTableBounded: sign-ins past the bound replace old sessions.
func TestSessionTableBounded(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	s := newSessions(c.now, time.Hour)
	first := s.create()
	for range maxSessions + 10 {
		c.add(time.Millisecond)
		s.create()
	}
	if n := len(s.byID); n > maxSessions {
		t.Fatalf("%d sessions kept, want at most %d", n, maxSessions)
	}
	if s.byID[first.id] != nil {
		t.Fatal("the oldest session was kept past the bound")
	}
}

// TestCSRF: state-changing requests need the session's token.
func TestCSRF(t *testing.T) {
	f := newFixture(t, nil)
	ck, csrf := f.signIn(t, local, admin)
	other, _ := f.signIn(t, local, admin)
	for name, c := range map[string]struct {
		ck  *http.Cookie
		hdr map[string]string
	}{
		"none":                {ck, nil},
		"wrong":               {ck, map[string]string{"X-CSRF-Token": "nope"}},
		"another session's":   {other, map[string]string{"X-CSRF-Token": csrf}},
		"cross-origin":        {ck, map[string]string{"X-CSRF-Token": csrf, "Origin": "http://evil.example"}},
		"opaque origin":       {ck, map[string]string{"X-CSRF-Token": csrf, "Origin": "null"}},
		"form field, wrong":   {ck, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		"no session at all":   {nil, map[string]string{"X-CSRF-Token": csrf}},
		"a made-up session":   {&http.Cookie{Name: cookieName, Value: "x"}, map[string]string{"X-CSRF-Token": csrf}},
		"an overlong session": {&http.Cookie{Name: cookieName, Value: strings.Repeat("x", 100)}, map[string]string{"X-CSRF-Token": csrf}},
	} {
		resp, body := f.req("POST", "/console/api/reconcile", local, c.ck, "csrf=nope", c.hdr)
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	// With the token the request reaches the handler: no reconciler here.
	resp, body := f.req("POST", "/console/api/reconcile", local, ck, "", map[string]string{"X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:7071"})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "no backend") {
		t.Fatalf("with the token: %d %s", resp.StatusCode, body)
	}
}

// TestResolveThroughAPIPath: the console's resolution is the API's: it
// writes over the sibling set, and a set that changed since the page read
// it is a 412.
func TestResolveThroughAPIPath(t *testing.T) {
	f := newFixture(t, nil)
	f.mem.SetConflict("acme", server.Conflict{Key: "k", ETag: `"set1"`, Siblings: []server.Sibling{
		{ETag: `"s1"`, Writer: 1, Time: time.Unix(1, 0), Size: 9, Body: []byte(`{"v":"a"}`)},
		{ETag: `"s2"`, Writer: 2, Time: time.Unix(2, 0), Size: 9, Body: []byte(`{"v":"b"}`)},
	}})
	ck, csrf := f.signIn(t, local, admin)
	hdr := func(ifMatch string) map[string]string {
		return map[string]string{"X-CSRF-Token": csrf, "If-Match": ifMatch, "Content-Type": "application/json"}
	}
	_, body := f.req("GET", "/console/api/conflict?tenant=acme&key=k", local, ck, "", nil)
	var cf ConflictRow
	if err := json.Unmarshal([]byte(body), &cf); err != nil || len(cf.Siblings) != 2 || string(cf.Siblings[1].Body) != `{"v":"b"}` {
		t.Fatalf("conflict: %s", body)
	}
	if resp, body := f.req("POST", "/console/api/resolve?tenant=acme&key=k", local, ck, `{"choose":"\"s2\""}`, hdr(`"stale"`)); resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("a stale set: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.req("POST", "/console/api/resolve?tenant=acme&key=k", local, ck, `{"choose":"\"s9\""}`, hdr(`"set1"`)); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("not a sibling: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.req("POST", "/console/api/resolve?tenant=acme&key=k", local, ck, `{"choose":"\"s2\""}`, hdr(`"set1"`)); resp.StatusCode != 200 {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	d, err := f.mem.Get(context.Background(), "acme", "k")
	if err != nil || string(d.Body) != `{"v":"b"}` {
		t.Fatalf("after the resolution: %q %v", d.Body, err)
	}
	if resp, _ := f.req("GET", "/console/api/conflict?tenant=acme&key=k", local, ck, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the conflict after its resolution: %d", resp.StatusCode)
	}
}

// TestHeaders: every answer forbids framing and inline script; / on the
// admin listener leads to the console.
func TestHeaders(t *testing.T) {
	f := newFixture(t, nil)
	for _, p := range []string{"/console/signin", "/console/overview", "/console/api/overview", "/console/static/app.js", "/console/nope"} {
		resp, _ := f.req("GET", p, local, nil, "", nil)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") ||
			resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: CSP %q, X-Frame-Options %q", p, csp, resp.Header.Get("X-Frame-Options"))
		}
	}
	if resp, _ := f.req("GET", "/", local, nil, "", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("GET /: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The pages hold no inline script.
	ck, _ := f.signIn(t, local, admin)
	for _, p := range pageNames {
		_, page := f.req("GET", "/console/"+p, local, ck, "", nil)
		if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(page) || strings.Contains(page, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
			t.Errorf("%s has inline script:\n%s", p, page)
		}
	}
}

// TestRoutesListed: every route Routes lists is served (for the API's
// description, which is checked against it).
func TestRoutesListed(t *testing.T) {
	f := newFixture(t, nil)
	ck, csrf := f.signIn(t, local, admin)
	rts := Routes()
	// Sign-out last: it ends the session the others use.
	last := func(rt string) int {
		if strings.HasSuffix(rt, "/signout") {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(rts, func(a, b string) int { return cmp.Compare(last(a), last(b)) })
	for _, rt := range rts {
		method, path, _ := strings.Cut(rt, " ")
		path = strings.Replace(path, "{file}", "app.js", 1)
		target := path + "?tenant=acme&key=k&backend=b"
		resp, body := f.req(method, target, local, ck, "{}", map[string]string{"X-CSRF-Token": csrf})
		refused := resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden
		if rt == "POST /console/signin" {
			refused = false // a sign-in without a token is a 401: served all the same
		}
		if refused || resp.StatusCode == http.StatusMethodNotAllowed ||
			resp.StatusCode == http.StatusNotFound && strings.Contains(body, "no console page") {
			t.Errorf("%s: %d %s", rt, resp.StatusCode, body)
		}
	}
	// Another method on a POST-only path is a 405 naming POST, not a 404.
	for _, path := range []string{"/console/api/resolve", "/console/api/reconcile", "/console/signout"} {
		if resp, body := f.req("GET", path, local, ck, "", nil); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET %s: %d %s, Allow %q; want 405, Allow POST", path, resp.StatusCode, body, resp.Header.Get("Allow"))
		}
	}
}

// TestTenantsCounted: the tenant rows are counted once per 10 s however
// often the page polls.
func TestTenantsCounted(t *testing.T) {
	counted := 0
	f := newFixture(t, func(o *Options) { o.Node = fakeNode{counted: &counted} })
	ck, _ := f.signIn(t, local, admin)
	poll := func() {
		t.Helper()
		if resp, body := f.req("GET", "/console/api/tenants", local, ck, "", nil); resp.StatusCode != 200 || !strings.Contains(body, `"acme"`) {
			t.Fatalf("tenants: %d %s", resp.StatusCode, body)
		}
	}
	poll()
	f.clock.add(9 * time.Second)
	poll()
	if counted != 1 {
		t.Fatalf("counted %d times within 10 s, want 1", counted)
	}
	f.clock.add(time.Second)
	poll()
	if counted != 2 {
		t.Fatalf("counted %d times after 10 s, want 2", counted)
	}
}

// fakeChaos is a simulator that reports a seed past 2^53.
type fakeChaos struct{ seed uint64 }

func (c fakeChaos) ChaosStatus() chaosapi.Status { return chaosapi.Status{Seed: c.seed} }
func (fakeChaos) ChaosBackend(string) (server.ChaosBackend, []string) {
	return nil, nil
}

// TestChaosSeedExact: the console's chaos status carries the seed as a
// decimal string too, which the page shows: as a JavaScript number, 64-bit
// seeds lose their last digits (584793133368947343 showed as
// 584793133368947300), and a seed is there to reproduce a run.
func TestChaosSeedExact(t *testing.T) {
	const seed = 584793133368947343
	f := newFixture(t, func(o *Options) { o.Chaos = fakeChaos{seed} })
	ck, _ := f.signIn(t, local, admin)
	resp, body := f.req("GET", "/console/api/chaos", local, ck, "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"seed":"584793133368947343"`) {
		t.Fatalf("chaos status: %d %s", resp.StatusCode, body)
	}
}

// healChaos is a simulator with one backend that counts its heals.
type healChaos struct{ b *healBackend }

type healBackend struct{ heals, sets int }

func (healChaos) ChaosStatus() chaosapi.Status { return chaosapi.Status{} }
func (c healChaos) ChaosBackend(name string) (server.ChaosBackend, []string) {
	if name != "b" {
		return nil, []string{"b"}
	}
	return c.b, []string{"b"}
}
func (b *healBackend) SetProfile(chaos.Profile) error { b.sets++; return nil }
func (b *healBackend) Heal()                          { b.heals++ }
func (*healBackend) Schedule() []chaos.Injection      { return nil }
func (*healBackend) Dropped() int                     { return 0 }

// TestChaosSetRefusesMisspeltHeal: a heal asked for under a misspelt
// name, or with a value that is not a flag, is refused, not taken for a
// profile set from the body.
func TestChaosSetRefusesMisspeltHeal(t *testing.T) {
	b := &healBackend{}
	f := newFixture(t, func(o *Options) { o.Chaos = healChaos{b} })
	ck, csrf := f.signIn(t, local, admin)
	hdr := map[string]string{"X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:7071"}
	for _, q := range []string{"backend=b&hael=1", "backend=b&heal=yes please"} {
		resp, body := f.req("POST", "/console/api/chaos?"+strings.ReplaceAll(q, " ", "+"), local, ck, "{}", hdr)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST chaos?%s: %d %s, want 400", q, resp.StatusCode, body)
		}
	}
	if resp, body := f.req("POST", "/console/api/chaos?backend=b&heal=1", local, ck, "", hdr); resp.StatusCode != 200 {
		t.Fatalf("heal: %d %s", resp.StatusCode, body)
	}
	if b.heals != 1 || b.sets != 0 {
		t.Fatalf("%d heals and %d profiles set, want 1 heal and none set", b.heals, b.sets)
	}
}

// TestDocsRefuseWhatTheAPIRefuses: the document browser's endpoints answer
// a tenant the node does not serve with 404 naming it, and refuse a query
// parameter they do not take, as the API's listing does, rather than show
// a mistyped tenant as an empty one.
func TestDocsRefuseWhatTheAPIRefuses(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Open = true
		o.Serves = func(_ context.Context, tenant string) bool { return tenant == "acme" }
	})
	ck, _ := f.signIn(t, local, "")
	for _, c := range []struct {
		target string
		status int
		says   string
	}{
		{"/console/api/docs?tenant=acme", 200, `"items"`},
		{"/console/api/docs?tenant=acmee", 404, `no tenant \"acmee\" on this node`},
		{"/console/api/doc?tenant=acmee&key=k", 404, `no tenant \"acmee\" on this node`},
		{"/console/api/docs?tenant=acme&bogus=1", 400, `unknown query parameter \"bogus\"`},
		{"/console/api/docs?tenant=acme&key=k", 400, `unknown query parameter \"key\"`},
	} {
		if resp, body := f.req("GET", c.target, local, ck, "", nil); resp.StatusCode != c.status || !strings.Contains(body, c.says) {
			t.Errorf("GET %s: %d %s; want %d saying %s", c.target, resp.StatusCode, body, c.status, c.says)
		}
	}
}

// TestTenantRequestsPastTheTable: a tenant the node's tenant table had no
// row left for shows no request count of its own (null, not a zero it
// did not have), and the table's overflow row is given beside; with room
// left, a tenant absent from the table has had none.
func TestTenantRequestsPastTheTable(t *testing.T) {
	for _, c := range []struct {
		reqs       map[string]int64
		acme, rest string
	}{
		{map[string]int64{"_other": 7}, `"requests_total":null`, `"other_requests_total":7`},
		{map[string]int64{"acme": 3, "_other": 7}, `"requests_total":3`, `"other_requests_total":7`},
		{map[string]int64{}, `"requests_total":0`, ""},
	} {
		f := newFixture(t, func(o *Options) {
			o.Open = true
			o.TenantRequests = func() map[string]int64 { return c.reqs }
		})
		ck, _ := f.signIn(t, local, "")
		resp, body := f.req("GET", "/console/api/tenants", local, ck, "", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, c.acme) || (c.rest != "") != strings.Contains(body, "other_requests_total") ||
			!strings.Contains(body, c.rest) {
			t.Errorf("tenant table %v: %d %s; want %s and %q", c.reqs, resp.StatusCode, body, c.acme, c.rest)
		}
	}
}
