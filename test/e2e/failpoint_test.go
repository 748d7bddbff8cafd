package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
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
	var (
		mu    sync.Mutex // guards acked
		acked = map[string]string{}
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for w := range 32 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("r%02d/w%02d/%06d", round, w, i)
				resp, _, err := p.do(ctx, http.MethodPut, key, fmt.Sprintf(`{"round":%d,"writer":%d,"i":%d}`, round, w, i))
				if err != nil {
					return // the process is gone
				}
				if resp.StatusCode/100 != 2 || resp.Header.Get("ETag") == "" {
					t.Errorf("PUT %s: %s", key, resp.Status)
					return
				}
				mu.Lock()
				acked[key] = resp.Header.Get("ETag")
				mu.Unlock()
			}
		})
	}
	wg.Wait()
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
