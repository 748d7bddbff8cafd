// Package console tests the web console of the real cairn binary
// ($CAIRN_BIN, or one built here) in headless Chromium (Debian's chromium,
// installed by scripts/chromium.sh; $CAIRN_CHROMIUM_BIN or chromium on
// PATH), driven with chromedp, and over plain HTTP for the refusals.
//
// The browser tests write a screenshot of every page at 1280 and 390 px
// width into test-artifacts/console/ at the repository's root (or
// $CAIRN_ARTIFACTS/console).
package console

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/proctest"
)

var cairnBin string

func TestMain(m *testing.M) { proctest.MainWithCairn(m, &cairnBin, "console") }

// The tokens of the tests' nodes: their hashes are on the command line.
const (
	adminToken  = "cairn_console-test-admin-token-0123456789abcdef"
	tenantToken = "cairn_console-test-tenant-token-0123456789abcdef"
	shopToken   = "cairn_console-test-shop-token-0123456789abcdef"
)

func sum(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// node is a running 'cairn serve'.
type node struct {
	API, Admin string // http://host:port
	cmd        *exec.Cmd
	stderr     *proctest.SyncBuffer
}

// startNode runs 'cairn serve' with the test's tenant and admin tokens, its
// admin listener on adminHost, and waits until both listeners answer.
func startNode(t *testing.T, adminHost string, args ...string) *node {
	t.Helper()
	ports := proctest.FreePorts(t, 2)
	api := fmt.Sprintf("127.0.0.1:%d", ports[0])
	admin := fmt.Sprintf("%s:%d", adminHost, ports[1])
	args = append([]string{"serve", "--data-dir", t.TempDir(), "--listen", api, "--admin-listen", admin,
		"--log-level", "warn", "--tenant", "demo:" + sum(tenantToken), "--admin-token-sha256", sum(adminToken)}, args...)
	cmd := exec.Command(cairnBin, args...)
	n := &node{API: "http://" + api, Admin: "http://" + admin, cmd: cmd, stderr: &proctest.SyncBuffer{}}
	cmd.Stdout, cmd.Stderr = io.Discard, n.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	// Polling across processes, with a deadline: the node's start is
	// another process's progress.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r1, err1 := http.Get(n.API + "/readyz")
		// Beyond loopback the admin listener's probes need the token too.
		req, _ := http.NewRequest("GET", n.Admin+"/livez", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		r2, err2 := http.DefaultClient.Do(req)
		if err1 == nil && err2 == nil && r1.StatusCode == 200 && r2.StatusCode == 200 {
			r1.Body.Close()
			r2.Body.Close()
			return n
		}
		if r1 != nil {
			r1.Body.Close()
		}
		if r2 != nil {
			r2.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("cairn did not start:\n%s", n.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// do makes an admin-token request of base+path and returns the status and
// body.
func do(t *testing.T, method, u, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (n *node) put(t *testing.T, key, body string) {
	t.Helper()
	n.putIn(t, "demo", key, body)
}

func (n *node) putIn(t *testing.T, tenant, key, body string) {
	t.Helper()
	if code, out := do(t, "PUT", n.API+"/v1/tenants/"+tenant+"/docs/"+url.PathEscape(key), body); code != 200 && code != 201 {
		t.Fatalf("PUT %s/%s: %d %s", tenant, key, code, out)
	}
}

// roundOn runs a reconciliation round of every tenant on backend (""
// for every one) and waits for it; it returns the keys it applied
// actions to.
func (n *node) roundOn(t *testing.T, backend string) int {
	t.Helper()
	code, out := do(t, "POST", n.Admin+"/v1/admin/reconcile/run?wait=1&backend="+url.QueryEscape(backend), "")
	if code != 200 {
		t.Fatalf("reconcile: %d %s", code, out)
	}
	var run struct {
		Rounds []struct {
			Applied int
			Error   string
		}
	}
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatal(err)
	}
	applied := 0
	for _, r := range run.Rounds {
		if r.Error != "" {
			t.Fatalf("round: %s", r.Error)
		}
		applied += r.Applied
	}
	return applied
}

// settle runs rounds on the nodes in turn until a turn after the first
// applies nothing.
func settle(t *testing.T, ns ...*node) {
	t.Helper()
	settleOn(t, "", ns...)
}

// settleOn is settle with rounds on one backend ("" for every one).
func settleOn(t *testing.T, backend string, ns ...*node) {
	t.Helper()
	for turn := range 8 {
		applied := 0
		for _, n := range ns {
			applied += n.roundOn(t, backend)
		}
		if applied == 0 && turn > 0 {
			return
		}
	}
	t.Fatal("the nodes did not settle")
}

// chromium returns the browser's path; without one the test fails in CI
// and is skipped elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CAIRN_CHROMIUM_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium; install it with `bash scripts/chromium.sh` (or set CAIRN_CHROMIUM_BIN)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifacts is the directory the screenshots go to.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CAIRN_ARTIFACTS")
	if dir == "" {
		root, err := filepath.Abs("../../..")
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "test-artifacts")
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
