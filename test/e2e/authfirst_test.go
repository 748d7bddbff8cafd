package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestStrangersOnTheBinary is the front door as an attacker finds it: with
// --tenant-rate 20 (bursts of 40), clients without a token or with a wrong
// one, some naming made-up tenants, send 300 requests; then the demo
// tenant's 20 requests are all served (none 429), the tenant table has no
// row for a made-up name, and the admin listener reads the admin token as
// the API does ("bearer" in any case, spaces around it) and refuses with
// the API's JSON error.
//
// Nothing here waits on time: the demo tenant's 20 requests fit its burst
// however fast or slow the strangers were.
func TestStrangersOnTheBinary(t *testing.T) {
	const adminToken = "cairn_e2e_admin_token"
	sum := sha256.Sum256([]byte(adminToken))
	p := startNode(t, t.TempDir(), "--tenant-rate", "20", "--backend", "b=fs:"+t.TempDir(),
		"--reconcile-interval", "0", "--admin-token-sha256", hex.EncodeToString(sum[:]), "--enable-chaos")
	call := func(url, auth string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	for i := range 300 {
		tenant := "demo"
		if i%3 == 0 {
			tenant = fmt.Sprintf("made-up-%d", i)
		}
		auth := []string{"", "Bearer cairn_not-a-token"}[i%2]
		if code, _, body := call(p.URL+"/v1/tenants/"+tenant+"/docs/k", auth); code != 401 && code != 429 {
			t.Fatalf("stranger %d: %d %s", i, code, body)
		}
	}
	for i := range 20 {
		method := []string{"PUT", "GET"}[i%2]
		resp, body, err := p.do(context.Background(), method, fmt.Sprintf("k%d", i/2), `{"v":1}`)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			t.Fatalf("demo's request %d after the strangers: %d %s", i, resp.StatusCode, body)
		}
	}

	admin := "http://" + adminAddr(t, p)
	_, _, table := call(admin+"/v1/admin/tenants", "")
	var rows struct {
		Tenants map[string]json.RawMessage `json:"tenants"`
	}
	if err := json.Unmarshal([]byte(table), &rows); err != nil {
		t.Fatalf("/v1/admin/tenants: %v: %s", err, table)
	}
	for name := range rows.Tenants {
		if name != "demo" && name != "_unauthenticated" {
			t.Fatalf("tenant table has a row %q: only authenticated tenants get one:\n%s", name, table)
		}
	}
	if rows.Tenants["demo"] == nil || rows.Tenants["_unauthenticated"] == nil {
		t.Fatalf("tenant table: want rows demo and _unauthenticated:\n%s", table)
	}

	// The chaos routes need the admin token even on loopback.
	for _, auth := range []string{"Bearer " + adminToken, "bearer " + adminToken, "BEARER   " + adminToken + "  "} {
		if code, _, body := call(admin+"/v1/admin/chaos", auth); code != 200 {
			t.Errorf("admin route with Authorization %q: %d %s", auth, code, body)
		}
	}
	code, h, body := call(admin+"/v1/admin/chaos", "Bearer cairn_wrong")
	var e struct {
		Error struct {
			Code      string `json:"code"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	json.Unmarshal([]byte(body), &e)
	if code != 401 || e.Error.Code != "unauthorized" || e.Error.RequestID == "" || e.Error.RequestID != h.Get("X-Request-Id") ||
		!strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Errorf("admin route with a wrong token: %d %v %s; want 401 with the JSON error naming the request id", code, h, body)
	}
}
