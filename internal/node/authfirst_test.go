package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/reconcile"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
)

// TestStrangersCannotSpendTenantBudget: with a tenant rate of 20/s, clients
// without a token, with a wrong one, or with another tenant's hammer tenant
// a's document, listing, conflict and ingest routes; a's own requests are
// all served, because only a's authenticated requests spend a's budget.
// The strangers are bounded by the node-wide budget of failed
// authentications instead: past its burst they get 429. An admin acting on
// a tenant spends that tenant's budget. The limiter's clock is frozen, so
// no budget refills while the test runs: the counts are exact.
func TestStrangersCannotSpendTenantBudget(t *testing.T) {
	tokA, sumA, _ := server.NewToken()
	tokB, sumB, _ := server.NewToken()
	tokAdmin, sumAdmin, _ := server.NewToken()
	_, sumC, _ := server.NewToken()
	cfg := testConfig(t)
	cfg.Auth = server.Auth{Tenants: map[string][][32]byte{"a": {sumA}, "b": {sumB}, "c": {sumC}}, Admin: [][32]byte{sumAdmin}}
	frozen := time.Unix(1000, 0)
	cfg.Limits = resilience.DefaultLimiterConfig()
	cfg.Limits.TenantRate, cfg.Limits.TenantBurst = 20, 20
	cfg.Limits.AuthFailureRate, cfg.Limits.AuthFailureBurst = 20, 50
	cfg.Limits.Now = func() time.Time { return frozen }
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())

	do := func(method, path, token, body string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, "http://"+n.Addr()+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if strings.Contains(path, "/ingest") {
			req.Header.Set("Content-Type", "application/x-ndjson")
		}
		return send(t, http.DefaultClient, req)
	}
	routes := []struct{ method, path, body string }{
		{"GET", "/v1/tenants/a/docs/k", ""},
		{"PUT", "/v1/tenants/a/docs/k", `{"v":1}`},
		{"GET", "/v1/tenants/a/docs", ""},
		{"GET", "/v1/tenants/a/conflicts", ""},
		{"POST", "/v1/tenants/a/ingest?key_field=id", `{"id":"x"}` + "\n"},
	}
	counts, wrong429 := map[int]int{}, 0
	for range 20 {
		for _, rt := range routes {
			for _, tok := range []string{"", "cairn_not-a-token", tokB} {
				code, h, body := do(rt.method, rt.path, tok, rt.body)
				counts[code]++
				if code != http.StatusTooManyRequests {
					continue
				}
				if _, msg := apiError(t, body); (!strings.Contains(msg, "fail authentication") || h.Get("Retry-After") == "") && wrong429 == 0 {
					wrong429++
					t.Errorf("stranger's 429: %q, Retry-After %q; want the failed-authentication budget named", msg, h.Get("Retry-After"))
				}
			}
		}
	}
	if refused, shed := counts[401]+counts[403], counts[429]; refused != 50 || shed != 250 || len(counts) != 3 {
		t.Errorf("strangers got %v; want 50 refused with 401/403 (the failure burst), then 250 429s", counts)
	}

	for i := range 20 {
		code, _, body := do(routes[i%len(routes)].method, routes[i%len(routes)].path, tokA, routes[i%len(routes)].body)
		if code == http.StatusTooManyRequests || code >= 500 {
			t.Fatalf("tenant a's request %d after the strangers: %d %s", i, code, body)
		}
	}
	if code, _, _ := do("GET", "/v1/tenants/a/docs/k", tokA, ""); code != http.StatusTooManyRequests {
		t.Errorf("tenant a's 21st request at a frozen clock: %d, want 429 (its budget is 20)", code)
	}
	if code, _, _ := do("GET", "/v1/tenants/b/docs/k", tokB, ""); code != http.StatusNotFound {
		t.Errorf("tenant b after its token was refused on a: %d, want served (404)", code)
	}
	for i := range 20 {
		if code, _, _ := do("GET", "/v1/tenants/c/docs/k", tokAdmin, ""); code != http.StatusNotFound {
			t.Fatalf("admin on tenant c, request %d: %d, want 404", i, code)
		}
	}
	if code, _, _ := do("GET", "/v1/tenants/c/docs/k", tokAdmin, ""); code != http.StatusTooManyRequests {
		t.Errorf("admin's 21st request on tenant c: %d, want 429 (charged to c)", code)
	}
}

// TestStrangersGetNoTenantRow: 1,100 requests that fail authentication,
// each naming a made-up tenant, add no row to /v1/admin/tenants (its cap is
// 1,024); they are counted together under "_unauthenticated", and a real
// tenant still gets its own row.
func TestStrangersGetNoTenantRow(t *testing.T) {
	tokA, sumA, _ := server.NewToken()
	tokB, sumB, _ := server.NewToken()
	cfg := testConfig(t)
	cfg.Auth = server.Auth{Tenants: map[string][][32]byte{"acme": {sumA}, "beta": {sumB}}}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())

	const strangers = 1100
	for i := range strangers {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/v1/tenants/made-up-%d/docs/k", n.Addr(), i), nil)
		switch i % 3 {
		case 1:
			req.Header.Set("Authorization", "Bearer cairn_not-a-token")
		case 2:
			req.Header.Set("Authorization", "Bearer "+tokB) // valid, not for this tenant: 403
		}
		if code, _, body := send(t, http.DefaultClient, req); code < 400 {
			t.Fatalf("stranger %d: %d %s", i, code, body)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+n.Addr()+"/v1/tenants/acme/docs/k", nil)
	req.Header.Set("Authorization", "Bearer "+tokA)
	if code, _, _ := send(t, http.DefaultClient, req); code != http.StatusNotFound {
		t.Fatalf("acme: %d, want 404", code)
	}

	code, _, body := send(t, http.DefaultClient, mustRequest(t, "GET", "http://"+n.AdminAddr()+"/v1/admin/tenants"))
	if code != 200 {
		t.Fatalf("/v1/admin/tenants: %d %s", code, body)
	}
	var table struct {
		Tenants map[string]struct {
			Requests     int64 `json:"requests"`
			ClientErrors int64 `json:"client_errors"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal([]byte(body), &table); err != nil {
		t.Fatal(err)
	}
	if got := table.Tenants["acme"].Requests; got != 1 {
		t.Errorf("acme's row: %d requests, want 1", got)
	}
	anon := table.Tenants["_unauthenticated"]
	if anon.Requests != strangers || anon.ClientErrors != strangers {
		t.Errorf("_unauthenticated row: %+v, want %d requests, all client errors", anon, strangers)
	}
	var others []string
	for name := range table.Tenants {
		if name != "acme" && name != "_unauthenticated" {
			others = append(others, name)
		}
	}
	if len(others) > 0 {
		t.Errorf("%d rows besides acme's and _unauthenticated, e.g. %q: only authenticated tenants get a row", len(others), others[0])
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestAdminTokenMakesNoTenant: an admin token acts on the tenants the node
// serves — configured, holding documents here, or known in a backend —
// and a mistyped tenant name is a 404 that stores nothing, where it made
// a tenant every node sharing the backend would then serve.
func TestAdminTokenMakesNoTenant(t *testing.T) {
	spec, err := ParseBackendSpec("shared=fs:" + t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tokAdmin, sumAdmin, _ := server.NewToken()
	_, sumA, _ := server.NewToken()
	admin := func(c *Config) {
		c.Auth = server.Auth{Tenants: map[string][][32]byte{"acme": {sumA}}, Admin: [][32]byte{sumAdmin}}
		c.Replication.ClaimCheck = time.Hour
	}
	// Another node wrote tenant "other" to the shared backend.
	o := startReplNodeWith(t, func(c *Config) {
		admin(c)
		c.Auth.Tenants = map[string][][32]byte{"other": {sumA}}
	}, spec)
	put := func(n replNode, tenant, key string) (int, string) {
		req, _ := http.NewRequest("PUT", "http://"+n.Addr()+"/v1/tenants/"+tenant+"/docs/"+key, strings.NewReader(`{"v":1}`))
		req.Header.Set("Authorization", "Bearer "+tokAdmin)
		code, _, body := send(t, http.DefaultClient, req)
		return code, body
	}
	if code, body := put(o, "other", "k"); code != 201 {
		t.Fatalf("admin PUT on other's own node: %d %s", code, body)
	}
	// Uploaded by the round, or by the uploader before it: in the backend.
	if st, err := o.repl.engines[0].RunRound(context.Background(), "other"); err != nil || st.Actions[reconcile.Upload]+st.Skipped+st.Actions[reconcile.InSync] != 1 {
		t.Fatalf("other's round: %+v, %v", st, err)
	}
	n := startReplNodeWith(t, admin, spec)
	for _, tc := range []struct {
		tenant string
		want   int
	}{{"acme", 201}, {"other", 201}, {"acmee", 404}} {
		code, body := put(n, tc.tenant, "k2")
		if code != tc.want {
			t.Errorf("admin PUT on %s: %d %s, want %d", tc.tenant, code, body, tc.want)
		}
		if tc.want == 404 && !strings.Contains(body, `no tenant \"acmee\" on this node`) {
			t.Errorf("the 404 does not say why: %s", body)
		}
	}
	for tn, err := range n.store.Tenants(context.Background()) {
		if err != nil || tn == "acmee" {
			t.Fatalf("the store holds tenant %q (%v)", tn, err)
		}
	}
}
