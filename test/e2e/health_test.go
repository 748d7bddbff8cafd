package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/store/storetest"
)

// refusedServe runs 'cairn serve' on dataDir, which must not start, and
// returns its stderr after checking that it exited 1 and printed, besides
// its JSON log, one line "cairn serve: …" that contains every one of want.
func refusedServe(t *testing.T, dataDir string, want ...string) string {
	t.Helper()
	cmd := exec.Command(cairnBin, "serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--admin-listen", "")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("serve on %s: %v, want exit status 1; stderr:\n%s", dataDir, err, &stderr)
	}
	var msg string
	for line := range strings.Lines(stderr.String()) {
		if strings.HasPrefix(line, "cairn serve: ") {
			msg = line
		}
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("serve's message %q does not name %q", msg, w)
		}
	}
	return stderr.String()
}

// wantLogMsg checks that stderr holds a JSON log record at ERROR with msg.
func wantLogMsg(t *testing.T, stderr, msg string) {
	t.Helper()
	for line := range strings.Lines(stderr) {
		var rec struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == msg && rec.Level == "ERROR" {
			return
		}
	}
	t.Errorf("no ERROR log record %q in stderr:\n%s", msg, stderr)
}

// TestLockedDataDirDiagnosed: a second serve on a data directory in use
// exits 1 with a message naming the lock and the runbook entry, and logs
// the runbook's log line.
func TestLockedDataDirDiagnosed(t *testing.T) {
	dir := t.TempDir()
	startNode(t, dir)
	stderr := refusedServe(t, dir, "in use by another process", `"Data directory locked"`, "docs/runbook.md")
	wantLogMsg(t, stderr, "store: data directory locked")
}

// TestCorruptStoreDiagnosed: a node whose store's manifest was damaged
// while it was stopped refuses to start: exit 1, a message naming the
// damage and the runbook entry, and the runbook's log line.
func TestCorruptStoreDiagnosed(t *testing.T) {
	dir := t.TempDir()
	p := startNode(t, dir)
	if resp, _, err := p.do(context.Background(), http.MethodPut, "k", `{}`); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	storetest.CorruptManifest(t, dir)
	stderr := refusedServe(t, dir, "is damaged", `"Corrupt local store"`, "docs/runbook.md")
	wantLogMsg(t, stderr, "store: local store corrupt")
}
