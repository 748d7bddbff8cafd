package e2e

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/proctest"
)

// TestLowFileLimitWarned: a node whose limit of open files is below what
// its connection limits need says so at start (past the limit, connections
// wait unanswered instead of being refused), and one whose limits fit
// says nothing.
func TestLowFileLimitWarned(t *testing.T) {
	const warning = "the process may open fewer files than its connection limits need"
	for _, c := range []struct {
		args []string
		warn bool
	}{
		{nil, true}, // --max-conns 10,000 and the store's files under 2,048
		{[]string{"--max-conns", "500"}, false},
	} {
		args := append([]string{"-c", `ulimit -n 2048 && exec "$0" "$@"`, cairnBin, "serve", "--data-dir", t.TempDir(),
			"--listen", "127.0.0.1:0", "--admin-listen", ""}, c.args...)
		cmd := exec.Command("sh", args...)
		stderr := &proctest.SyncBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(stderr.String(), `"cairn node started"`) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("%q did not start within 30s:\n%s", c.args, stderr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		out := stderr.String()
		if got := strings.Contains(out, warning) && strings.Contains(out, `"open_files_limit":2048`); got != c.warn {
			t.Errorf("%q under a limit of 2,048 open files: warned %v, want %v\n%s", c.args, got, c.warn, out)
		}
	}
}
