package e2e

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend/fs"
	"github.com/cairnstore/cairn/internal/fault"
)

// TestCollectTwoProcesses: two 'cairn serve' processes share an fs
// backend, with a short --gc-grace and a fast --gc-interval. A delete on A
// reaches B by rounds within the grace period; then each node's collector
// removes its tombstone, the backend's object goes, the metric counts it,
// and later rounds on both nodes bring nothing back.
func TestCollectTwoProcesses(t *testing.T) {
	shared := t.TempDir()
	// The grace period only has to outlast the two rounds run right after
	// the delete; a few seconds leaves room for a loaded machine.
	args := []string{"--backend", "shared=fs:" + shared, "--reconcile-interval", "0",
		"--gc-grace", "3s", "--gc-interval", "100ms"}
	a := startNode(t, t.TempDir(), args...)
	b := startNode(t, t.TempDir(), args...)
	adminA, adminB := "http://"+adminAddr(t, a), "http://"+adminAddr(t, b)
	ctx := context.Background()
	round := func(admin string) {
		t.Helper()
		cmd := exec.Command(cairnBin, "reconcile", "run", "--wait", "--tenant", "demo")
		cmd.Env = append(os.Environ(), "CAIRN_ADMIN_URL="+admin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cairn reconcile run against %s: %v\n%s", admin, err, out)
		}
	}
	view, err := fs.Open("shared", shared)
	if err != nil {
		t.Fatal(err)
	}
	onBackend := func() bool {
		_, err := view.Stat(ctx, "demo", "doc1")
		if err != nil && fault.ClassOf(err) != fault.NotFound {
			t.Fatal(err)
		}
		return err == nil
	}

	if resp, body, err := a.do(ctx, "PUT", "doc1", `{"v":1}`); err != nil || resp.StatusCode != 201 {
		t.Fatalf("PUT on A: %v %v %s", err, resp, body)
	}
	round(adminA)
	round(adminB)
	if resp, _, err := a.do(ctx, "DELETE", "doc1", ""); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("DELETE on A: %v %v", err, resp)
	}
	round(adminA)
	round(adminB)
	if !onBackend() {
		t.Fatal("the tombstone left the backend within the grace period")
	}
	if resp, _, _ := b.do(ctx, "GET", "doc1", ""); resp.StatusCode != 404 {
		t.Fatalf("GET on B after the rounds: %d, want 404", resp.StatusCode)
	}

	// Across processes: poll, with a deadline, until both collectors ran.
	collected := func(admin string) bool {
		resp, err := httpClient.Get(admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "cairn_gc_tombstones_collected_total 1\n")
	}
	deadline := time.Now().Add(30 * time.Second)
	for !collected(adminA) || !collected(adminB) || onBackend() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: collected on A %v, on B %v, object on the backend %v",
				collected(adminA), collected(adminB), onBackend())
		}
		time.Sleep(50 * time.Millisecond)
	}
	round(adminA)
	round(adminB)
	if onBackend() {
		t.Fatal("a round brought the collected document back to the backend")
	}
	for name, p := range map[string]*proc{"A": a, "B": b} {
		if resp, _, _ := p.do(ctx, "GET", "doc1", ""); resp.StatusCode != 404 {
			t.Fatalf("GET on %s after the collection: %d, want 404", name, resp.StatusCode)
		}
		if err := p.stop(); err != nil {
			t.Errorf("SIGTERM %s: %v\n%s", name, err, p.stderr)
		}
	}
}
