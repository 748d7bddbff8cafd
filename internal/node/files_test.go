package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/tlscert/tlscerttest"
)

// TestOpenToOthersWarned: a node whose data directory or TLS key other
// users may read logs a warning naming it; a new data directory is made
// for its owner only and draws none.
func TestOpenToOthersWarned(t *testing.T) {
	dir := t.TempDir()
	_, certFile, keyFile := tlscerttest.NewCAWithLeaf(t, dir)
	for _, c := range []struct {
		name    string
		dirMode os.FileMode // 0: a directory the node makes
		keyMode os.FileMode // 0: no TLS
		warn    []string
	}{
		{"new directory", 0, 0, nil},
		{"directory 0755", 0o755, 0, []string{"--data-dir"}},
		{"directory 0750", 0o750, 0, []string{"--data-dir"}},
		{"directory 0700", 0o700, 0, nil},
		{"key 0600", 0o700, 0o600, nil},
		{"key 0644", 0o700, 0o644, []string{"--tls-key"}},
	} {
		cfg := testConfig(t)
		cfg.AdminListen = ""
		cfg.DataDir = filepath.Join(cfg.DataDir, "data")
		if c.dirMode != 0 {
			if err := os.Mkdir(cfg.DataDir, c.dirMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(cfg.DataDir, c.dirMode); err != nil { // past the umask
				t.Fatal(err)
			}
		}
		if c.keyMode != 0 {
			if err := os.Chmod(keyFile, c.keyMode); err != nil {
				t.Fatal(err)
			}
			cfg.TLS = &TLS{CertFile: certFile, KeyFile: keyFile}
		}
		out := startupLog(t, cfg)
		if got := strings.Count(out, "is open to other users"); got != len(c.warn) {
			t.Errorf("%s: %d warnings, want %d naming %v\n%s", c.name, got, len(c.warn), c.warn, out)
		}
		for _, flag := range c.warn {
			if !strings.Contains(out, `"flag":"`+flag+`"`) {
				t.Errorf("%s: no warning names %s\n%s", c.name, flag, out)
			}
		}
		if c.dirMode == 0 {
			if fi, err := os.Stat(cfg.DataDir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: the node made its data directory %v (%v), want 0700", c.name, fi.Mode().Perm(), err)
			}
			for _, name := range []string{"identity.json", "LOCK"} {
				if fi, err := os.Stat(filepath.Join(cfg.DataDir, name)); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: %s is %v (%v), want 0600", c.name, name, fi.Mode().Perm(), err)
				}
			}
		}
	}
}

// startupLog starts a node on cfg, shuts it down, and returns what it
// logged (JSON lines, Info and above).
func startupLog(t *testing.T, cfg Config) string {
	t.Helper()
	var logs proctest.SyncBuffer
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return logs.String()
}
