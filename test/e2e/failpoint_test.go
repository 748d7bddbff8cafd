package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFailpointKillLosesNoAcknowledgedWrite arms a commit failpoint of the
// real binary (--enable-chaos --failpoints NAME=kill@N), writes with 32
// clients until the node SIGKILLs itself at the N-th group commit, restarts
// it on the same directory without chaos, and checks that every write it
// acknowledged is there with the ETag it acknowledged. after-sync dies with
// a durable group whose writers were never answered; before-sync dies with
// a group staged and not written. Neither may lose an acknowledged write.
func TestFailpointKillLosesNoAcknowledgedWrite(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CAIRN_CRASH_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (set CAIRN_CRASH_SEED to replay)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, fp := range []string{"store.commit.after-sync", "store.commit.before-sync"} {
		t.Run(fp, func(t *testing.T) {
			dir := t.TempDir()
			acked := map[string]string{}
			for round := range 3 {
				n := 5 + rng.IntN(40)
				p := startNode(t, dir, "--enable-chaos", "--chaos-seed", fmt.Sprint(seed),
					"--failpoints", fmt.Sprintf("%s=kill@%d", fp, n))
				got := writeUntilDead(t, p, round)
				if !killedBySIGKILL(p.err) {
					t.Fatalf("round %d: the node exited with %v, want SIGKILL by the failpoint\n%s", round, p.err, p.stderr)
				}
				if !strings.Contains(p.stderr.String(), `"msg":"chaos: failpoint kill"`) || !strings.Contains(p.stderr.String(), fp) {
					t.Fatalf("round %d: no failpoint log line:\n%s", round, p.stderr)
				}
				for k, v := range got {
					acked[k] = v
				}
				t.Logf("round %d: killed at commit group %d with %d writes acknowledged", round, n, len(got))
			}
			if len(acked) == 0 {
				t.Fatal("no write was acknowledged: the test would check nothing")
			}
			p := startNode(t, dir)
			verify(t, p, acked, 3)
			if err := p.stop(); err != nil {
				t.Errorf("clean shutdown: %v\n%s", err, p.stderr)
			}
		})
	}
}

// writeUntilDead runs 32 writers on fresh keys until the node stops
// answering, waits for it to exit, and returns what it acknowledged.
func writeUntilDead(t *testing.T, p *proc, round int) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	acked := startWriters(ctx, t, p, round).wait()
	if err := p.wait(30 * time.Second); err == nil {
		t.Fatalf("round %d: the node exited cleanly; the failpoint did not fire\n%s", round, p.stderr)
	}
	return acked
}

func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// TestReconcileFailpointKillResumes arms reconcile.apply.after on a node
// replicating to an fs backend: the node SIGKILLs itself after its N-th
// applied upload, while clients write. Restarted without chaos, it
// finishes the job: a second node on the same backend ends up with every
// write the first acknowledged, with the same ETag.
func TestReconcileFailpointKillResumes(t *testing.T) {
	shared := t.TempDir()
	backendArgs := []string{"--backend", "shared=fs:" + shared, "--reconcile-interval", "0"}
	dir := t.TempDir()
	a := startNode(t, dir, append(backendArgs, "--enable-chaos", "--failpoints", "reconcile.apply.after=kill@20")...)
	acked := writeUntilDead(t, a, 0)
	if !killedBySIGKILL(a.err) || !strings.Contains(a.stderr.String(), "reconcile.apply.after") {
		t.Fatalf("the node exited with %v, want SIGKILL by reconcile.apply.after\n%s", a.err, a.stderr)
	}
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	t.Logf("killed after the 20th upload with %d writes acknowledged", len(acked))
	a = startNode(t, dir, backendArgs...)
	b := startNode(t, t.TempDir(), backendArgs...)
	runRounds := func(p *proc) {
		t.Helper()
		resp, err := httpClient.Post("http://"+adminAddr(t, p)+"/v1/admin/reconcile/run?wait=1&tenant=demo", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("reconcile run: %s", resp.Status)
		}
	}
	runRounds(a)
	runRounds(b)
	verify(t, b, acked, 1)
	for _, p := range []*proc{a, b} {
		if err := p.stop(); err != nil {
			t.Errorf("clean shutdown: %v\n%s", err, p.stderr)
		}
	}
}

// TestMemoryBallast: a node under a tight GOMEMLIMIT with a chaos ballast
// starts, reports the ballast and the limit, and serves writes.
func TestMemoryBallast(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "192MiB")
	p := startNode(t, t.TempDir(), "--enable-chaos", "--chaos-ballast", "64MiB")
	if !strings.Contains(p.stderr.String(), `"gomemlimit":201326592`) || !strings.Contains(p.stderr.String(), `"ballast_bytes":67108864`) {
		t.Fatalf("the start-up log does not show the limit and the ballast:\n%s", p.stderr)
	}
	for i := range 50 {
		if resp, _, err := p.do(context.Background(), http.MethodPut, fmt.Sprintf("k%d", i), `{"x":1}`); err != nil || resp.StatusCode != 201 {
			t.Fatalf("PUT under memory pressure: %v %v", resp, err)
		}
	}
	resp, err := httpClient.Get("http://" + adminAddr(t, p) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "cairn_chaos_ballast_bytes 6.7108864e+07") {
		t.Fatalf("no cairn_chaos_ballast_bytes in the metrics")
	}
	if err := p.stop(); err != nil {
		t.Errorf("clean shutdown: %v\n%s", err, p.stderr)
	}
}
