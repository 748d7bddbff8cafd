package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestChaosAdminOnTheBinary drives the fault simulator of the real binary
// through its admin listener, as an operator or the chaos harness does:
// a partition set with PUT fails the backend's rounds and shows in the
// status, the metric and the log; DELETE heals, and once the breaker lets
// a probe through, a round replicates what was written meanwhile.
func TestChaosAdminOnTheBinary(t *testing.T) {
	const adminToken = "cairn_e2e_admin_token"
	sum := sha256.Sum256([]byte(adminToken))
	shared := t.TempDir()
	p := startNode(t, t.TempDir(), "--backend", "shared=fs:"+shared, "--reconcile-interval", "0",
		"--admin-token-sha256", hex.EncodeToString(sum[:]), "--enable-chaos", "--chaos-seed", "42")
	admin := "http://" + adminAddr(t, p)
	call := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, admin+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call("PUT", "/v1/admin/chaos/shared", "", `{"partition":"fail"}`); code != 401 {
		t.Fatalf("PUT without the admin token: %d %s", code, body)
	}
	if code, body := call("PUT", "/v1/admin/chaos/shared", adminToken, `{"partition":"sometimes"}`); code != 400 || !strings.Contains(body, "partition:") {
		t.Fatalf("PUT with a bad partition: %d %s", code, body)
	}
	if code, body := call("PUT", "/v1/admin/chaos/shared", adminToken, `{"partition":"fail"}`); code != 200 {
		t.Fatalf("PUT partition: %d %s", code, body)
	}
	if resp, _, err := p.do(context.Background(), "PUT", "k1", `{"v":1}`); err != nil || resp.StatusCode != 201 {
		t.Fatalf("a write during the partition: %v %v (the node must not wait on its backend)", resp, err)
	}
	var run struct {
		Rounds []struct{ Error string } `json:"rounds"`
	}
	_, body := call("POST", "/v1/admin/reconcile/run?wait=1&tenant=demo", "", "")
	// The round fails on the partition, or on the breaker that the
	// uploader's failed attempts already opened.
	if json.Unmarshal([]byte(body), &run); len(run.Rounds) != 1 ||
		!strings.Contains(run.Rounds[0].Error, "partitioned") && !strings.Contains(run.Rounds[0].Error, "breaker open") {
		t.Fatalf("round during the partition: %s", body)
	}
	_, status := call("GET", "/v1/admin/chaos", adminToken, "")
	if !strings.Contains(status, `"partition": "fail"`) || !strings.Contains(status, `"seed": 42`) {
		t.Fatalf("chaos status: %s", status)
	}
	_, metrics := call("GET", "/metrics", "", "")
	if !strings.Contains(metrics, `cairn_chaos_injected_total{backend="shared",fault="partition"}`) ||
		strings.Contains(metrics, `cairn_chaos_injected_total{backend="shared",fault="partition"} 0`) {
		t.Fatalf("no partition injections in the metrics")
	}
	if !strings.Contains(p.stderr.String(), `"msg":"chaos: injected fault"`) {
		t.Fatalf("no injection log line:\n%s", p.stderr)
	}

	if code, body := call("DELETE", "/v1/admin/chaos/shared", adminToken, ""); code != 200 {
		t.Fatalf("DELETE (heal): %d %s", code, body)
	}
	_, status = call("GET", "/v1/admin/chaos", adminToken, "")
	if strings.Contains(status, `"partition": "fail"`) {
		t.Fatalf("the profile survived the heal: %s", status)
	}
	// The partition opened the backend's breaker; it lets a probe through
	// after its open delay (10 s), and then the rounds pass again. Poll
	// across the process boundary with a deadline.
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		_, body = call("POST", "/v1/admin/reconcile/run?wait=1&tenant=demo", "", "")
		run.Rounds = nil // Unmarshal would decode into the old element, keeping its error
		if json.Unmarshal([]byte(body), &run); len(run.Rounds) == 1 && run.Rounds[0].Error == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful round within 45s of the heal: %s", body)
		}
	}
	// A second node on the backend sees the write made during the partition.
	q := startNode(t, t.TempDir(), "--backend", "shared=fs:"+shared, "--reconcile-interval", "0")
	if resp, err := httpClient.Post("http://"+adminAddr(t, q)+"/v1/admin/reconcile/run?wait=1&tenant=demo", "", nil); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if resp, got, err := q.do(context.Background(), "GET", "k1", ""); err != nil || resp.StatusCode != 200 || string(got) != `{"v":1}` {
		t.Fatalf("k1 on the second node: %v %s %v", resp, got, err)
	}
	for _, n := range []*proc{p, q} {
		if err := n.stop(); err != nil {
			t.Errorf("clean shutdown: %v\n%s", err, n.stderr)
		}
	}
}
