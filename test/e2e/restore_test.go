package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/proctest"
)

// TestRestoreProcedure follows docs/runbook.md, "Restore a node", on the
// real binary: node A with an fs backend takes writes and is stopped;
// node B, started on an empty data directory with the same --tenant and
// --backend (and, as step 3 allows, a bound on the load it puts on the
// backend), is catching up: /readyz is 503 on both listeners, the admin
// listener's naming the tenant, a create-only write answers 503 catching_up with Retry-After,
// a GET reads the document through from the backend with its ETag, and
// 'cairn reconcile status' says so. Restarted without the bound (step 3),
// its round completes: /readyz 200, every document with A's ETag, served
// from the node, and a create-only write of an existing key is 412.
func TestRestoreProcedure(t *testing.T) {
	const token = "cairn_e2e-restore-token"
	sum := sha256.Sum256([]byte(token))
	flags := []string{"--tenant", "demo:" + hex.EncodeToString(sum[:]), "--backend", "shared=fs:" + t.TempDir()}
	ctx := context.Background()

	a := startConfigured(t, t.TempDir(), token, flags...)
	etags := map[string]string{}
	for i := range 5 {
		key := fmt.Sprintf("doc%d", i)
		resp, body, err := a.do(ctx, "PUT", key, fmt.Sprintf(`{"n":%d}`, i))
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("PUT %s on A: %v %v %s", key, err, resp, body)
		}
		etags[key] = resp.Header.Get("ETag")
	}
	reconcileCLI(t, "http://"+adminAddr(t, a), "run", "--wait")
	if err := a.stop(); err != nil {
		t.Fatalf("stopping A: %v\n%s", err, a.stderr)
	}

	// Steps 1 and 3: an empty data directory, the same --tenant and
	// --backend; the restore's load bounded to one backend call per 1000s,
	// which holds its round after its first call.
	dirB := t.TempDir()
	b := startConfigured(t, dirB, token, append(flags, "--backend-ops", "shared=0.001")...)
	adminB := "http://" + adminAddr(t, b)
	// Step 2: catching up.
	if code, body := httpGet(t, adminB+"/readyz"); code != 503 || !strings.Contains(body, `"catching_up"`) || !strings.Contains(body, `"demo"`) {
		t.Errorf("admin /readyz while catching up: %d %s; want 503 naming demo", code, body)
	}
	if code, body := httpGet(t, b.URL+"/readyz"); code != 503 || !strings.Contains(body, `"catching_up"`) || strings.Contains(body, `"demo"`) {
		t.Errorf("API /readyz while catching up: %d %s; want 503 catching_up naming no tenant", code, body)
	}
	resp, body, err := b.do(ctx, "PUT", "doc0", `{"n":"new"}`, "If-None-Match", "*")
	if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"catching_up"`) {
		t.Errorf("create-only PUT while catching up: %v %s %s; want 503 catching_up with Retry-After", err, brief(resp), body)
	}
	resp, body, err = b.do(ctx, "GET", "doc1", "")
	if err != nil || resp.StatusCode != 200 || string(body) != `{"n":1}` || resp.Header.Get("ETag") != etags["doc1"] ||
		resp.Header.Get("X-Cairn-Read-Through") != "shared" {
		t.Errorf("GET doc1 while catching up: %v %s %s; want 200 {\"n\":1}, ETag %s, X-Cairn-Read-Through: shared", err, brief(resp), body, etags["doc1"])
	}
	if resp, _, err := b.do(ctx, "GET", "absent", ""); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET of a key absent everywhere while catching up: %v %s; want 404", err, brief(resp))
	}
	if out := reconcileCLI(t, adminB, "status"); !strings.Contains(out, "catching up") || !strings.Contains(out, "demo") {
		t.Errorf("cairn reconcile status while catching up:\n%s", out)
	}
	// Step 3: restarted without the bound, the catch-up goes on.
	if err := b.stop(); err != nil {
		t.Fatalf("stopping B: %v\n%s", err, b.stderr)
	}
	b = startConfigured(t, dirB, token, flags...)
	adminB = "http://" + adminAddr(t, b)
	// Step 4: wait for /readyz (polling another process, with a deadline).
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := httpGet(t, adminB+"/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin /readyz still %d %s after 60s", code, body)
		}
		time.Sleep(50 * time.Millisecond) // polling another process
	}
	if code, body := httpGet(t, b.URL+"/readyz"); code != 200 {
		t.Errorf("API /readyz after the catch-up: %d %s", code, body)
	}
	for key, etag := range etags {
		resp, _, err := b.do(ctx, "GET", key, "")
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("ETag") != etag || resp.Header.Get("X-Cairn-Read-Through") != "" {
			t.Errorf("GET %s after the catch-up: %v %s; want 200, ETag %s, from the node", key, err, brief(resp), etag)
		}
	}
	resp, body, err = b.do(ctx, "PUT", "doc0", `{"n":"new"}`, "If-None-Match", "*")
	if err != nil || resp.StatusCode != 412 {
		t.Errorf("create-only PUT of an existing key after the catch-up: %v %s %s; want 412", err, brief(resp), body)
	}
	if err := b.stop(); err != nil {
		t.Errorf("stopping B: %v\n%s", err, b.stderr)
	}
}

// brief is a response's status and the headers the test looks at.
func brief(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	return fmt.Sprintf("%d (ETag %s, Retry-After %q, X-Cairn-Read-Through %q)", resp.StatusCode,
		resp.Header.Get("ETag"), resp.Header.Get("Retry-After"), resp.Header.Get("X-Cairn-Read-Through"))
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startConfigured runs 'cairn serve' with configured tenants (no
// development token: token is the one the --tenant hashes name) and waits
// until it printed the address it serves.
func startConfigured(t *testing.T, dataDir, token string, args ...string) *proc {
	t.Helper()
	args = append([]string{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--log-level", "warn"}, args...)
	cmd := exec.Command(cairnBin, args...)
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	p := &proc{t: t, cmd: cmd, Token: token, stderr: &proctest.SyncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting cairn: %v", err)
	}
	serving := regexp.MustCompile(`serving (http://[0-9.]+:[0-9]+) `)
	deadline := time.Now().Add(30 * time.Second)
	for p.URL == "" {
		if m := serving.FindStringSubmatch(p.stderr.String()); m != nil {
			p.URL = m[1]
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			t.Fatalf("cairn did not print its address within 30s:\n%s", p.stderr)
		}
		time.Sleep(10 * time.Millisecond) // polling another process
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	return p
}
