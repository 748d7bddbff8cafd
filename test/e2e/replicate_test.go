package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestReplicateTwoProcesses: two 'cairn serve' processes, each with its own
// data directory, replicate through one fs backend directory. Rounds are
// started with 'cairn reconcile run --wait' against each node's admin
// listener; a write and then a delete on A reach B, and both processes
// drain cleanly on SIGTERM with their engines running.
func TestReplicateTwoProcesses(t *testing.T) {
	shared := t.TempDir()
	args := []string{"--backend", "shared=fs:" + shared, "--reconcile-interval", "0"}
	a := startNode(t, t.TempDir(), args...)
	b := startNode(t, t.TempDir(), args...)
	adminA, adminB := "http://"+adminAddr(t, a), "http://"+adminAddr(t, b)
	ctx := context.Background()

	reconcile := func(admin string, sub ...string) string {
		t.Helper()
		cmd := exec.Command(cairnBin, append([]string{"reconcile"}, sub...)...)
		cmd.Env = append(os.Environ(), "CAIRN_ADMIN_URL="+admin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cairn reconcile %v against %s: %v\n%s", sub, admin, err, out)
		}
		return string(out)
	}
	// converge runs rounds on A then B until B answers key with want,
	// polling across processes with a deadline.
	converge := func(key string, want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			reconcile(adminA, "run", "--wait", "--tenant", "demo")
			reconcile(adminB, "run", "--wait", "--tenant", "demo")
			resp, _, err := b.do(ctx, "GET", key, "")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s on B: %d after 30s of rounds, want %d", key, resp.StatusCode, want)
			}
		}
	}

	if resp, body, err := a.do(ctx, "PUT", "doc1", `{"from":"a"}`); err != nil || resp.StatusCode != 201 {
		t.Fatalf("PUT on A: %v %v %s", err, resp, body)
	}
	converge("doc1", 200)
	if _, body, _ := b.do(ctx, "GET", "doc1", ""); string(body) != `{"from":"a"}` {
		t.Fatalf("B has doc1 = %q", body)
	}
	if resp, _, err := a.do(ctx, "DELETE", "doc1", ""); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("DELETE on A: %v %v", err, resp)
	}
	converge("doc1", 404)

	status := reconcile(adminB, "status")
	for _, want := range []string{"BREAKER", "shared", "closed", "demo"} {
		if !strings.Contains(status, want) {
			t.Errorf("cairn reconcile status on B lacks %q:\n%s", want, status)
		}
	}
	for name, p := range map[string]*proc{"A": a, "B": b} {
		if err := p.stop(); err != nil {
			t.Errorf("SIGTERM %s: %v\n%s", name, err, p.stderr)
		}
	}
}
