package cli

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/reconcile"
	"github.com/cairnstore/cairn/internal/server"
)

// startReplicatingNode runs a node in-process with one tenant and one fs
// backend; the env holds the client and admin settings.
func startReplicatingNode(t *testing.T) map[string]string {
	t.Helper()
	tok, sum, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := node.ParseBackendSpec("local=fs:" + t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(node.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Auth:        server.Auth{Tenants: map[string][][32]byte{"acme": {sum}}},
		Replication: node.Replication{Backends: []node.BackendSpec{spec}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return map[string]string{"CAIRN_URL": "http://" + n.Addr(), "CAIRN_TOKEN": tok, "CAIRN_TENANT": "acme",
		"CAIRN_ADMIN_URL": "http://" + n.AdminAddr()}
}

func TestReconcileCommands(t *testing.T) {
	env := startReplicatingNode(t)
	if code, _, stderr := run(t, env, "", "put", "a", "--data", `{"n":1}`); code != 0 {
		t.Fatalf("put: %d %s", code, stderr)
	}
	steps := []struct {
		args   []string
		code   int
		stdout []string // substrings
		stderr string
	}{
		{[]string{"reconcile", "run", "--wait", "--tenant", "acme"}, 0, []string{"BACKEND", "local", "acme"}, ""},
		{[]string{"reconcile", "status"}, 0, []string{"BREAKER", "local", "closed", "acme", "idle", "collector: grace 24h0m0s, every 0s"}, ""},
		{[]string{"reconcile", "run", "--wait", "--backend", "local", "--confirm"}, 0, []string{"local  ", "acme"}, ""},
		{[]string{"reconcile", "run"}, 0, []string{"triggered"}, ""},
		{[]string{"reconcile", "run", "--backend", "nope"}, exitFail, nil, "HTTP 404"},
		{[]string{"reconcile"}, exitUsage, nil, "want status or run"},
		{[]string{"reconcile", "sideways"}, exitUsage, nil, "want status or run"},
	}
	for _, s := range steps {
		code, stdout, stderr := run(t, env, "", s.args...)
		if code != s.code || !strings.Contains(stderr, s.stderr) {
			t.Errorf("cairn %q: exit %d, stderr %q; want exit %d and %q", s.args, code, stderr, s.code, s.stderr)
		}
		for _, want := range s.stdout {
			if !strings.Contains(stdout, want) {
				t.Errorf("cairn %q: stdout %q lacks %q", s.args, stdout, want)
			}
		}
	}
	// The first round uploaded the document, unless the startup pass or
	// the uploader was first: either way a later round has nothing to do.
	_, stdout, _ := run(t, env, "", "reconcile", "run", "--wait")
	if !strings.Contains(stdout, "in_sync=1") {
		t.Errorf("a round after the upload: %q; want in_sync=1", stdout)
	}
}

func TestServeRefusesBadReplicationSettings(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--backend", "x"}, nil, `--backend "x"`},
		{[]string{"--backend", "a=ftp://x"}, nil, "want fs:/path or s3://"},
		{nil, map[string]string{"CAIRN_BACKEND": "a=fs:/tmp/a,b=s3://bkt?bogus=1"}, "unknown parameter bogus"},
		{[]string{"--conflict-policy", "acme"}, nil, `--conflict-policy "acme": want TENANT=`},
		{[]string{"--conflict-policy", "acme=newest"}, nil, `--conflict-policy "acme=newest"`},
		{[]string{"--conflict-policy", "Acme=lww"}, nil, `--conflict-policy "Acme=lww"`},
		{[]string{"--reconcile-interval", "-1s"}, nil, "--reconcile-interval -1s"},
		{[]string{"--gc-interval", "-1s"}, nil, "--gc-interval -1s: want 0 (never) or more"},
		{[]string{"--gc-grace", "30s"}, nil, "--gc-grace 30s: want more than --reconcile-interval (30s)"},
		{[]string{"--reconcile-interval", "2h", "--gc-grace", "1h"}, nil, "--gc-grace 1h0m0s: want more than --reconcile-interval (2h0m0s)"},
		{[]string{"--backend", "a=fs:/tmp/a", "--backend-concurrency", "b=4"}, nil, `--backend-concurrency "b=4": no --backend named "b"`},
		{[]string{"--backend", "a=fs:/tmp/a", "--backend-concurrency", "a=0"}, nil, `--backend-concurrency "a=0": want a whole number`},
		{[]string{"--backend", "a=fs:/tmp/a", "--backend-ops", "a"}, nil, `--backend-ops "a": want NAME=VALUE`},
		{[]string{"--backend", "a=fs:/tmp/a", "--backend-ops", "a=-3"}, nil, `--backend-ops "a=-3": want calls per second`},
		{[]string{"--backend", "a=fs:/tmp/a"}, map[string]string{"CAIRN_BACKEND_BYTES": "a=20MiB,a=lots"}, `--backend-bytes "a=lots": want bytes per second`},
	} {
		args := append([]string{"serve", "--data-dir", dir}, tt.args...)
		code, _, stderr := run(t, tt.env, "", args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("cairn %q (env %v): exit %d, stderr %q; want exit %d and %q", args, tt.env, code, stderr, exitUsage, tt.want)
		}
	}
}

func TestBackendLimitFlags(t *testing.T) {
	fs, f := newServeFlags()
	if err := fs.Parse([]string{"--backend", "a=fs:/tmp/a", "--backend", "b=fs:/tmp/b",
		"--backend-concurrency", "a=4", "--backend-ops", "a=250.5", "--backend-bytes", "a=20MiB", "--backend-ops", "b=10"}); err != nil {
		t.Fatal(err)
	}
	var cfg node.Config
	if err := f.replication(&cfg); err != nil {
		t.Fatal(err)
	}
	if r := cfg.Replication; r.GCGrace != reconcile.DefaultGrace || r.GCInterval != 10*time.Minute {
		t.Fatalf("collector defaults: grace %v, interval %v; want %v and 10m", r.GCGrace, r.GCInterval, reconcile.DefaultGrace)
	}
	got := cfg.Replication.Limits
	want := map[string]reconcile.Limits{"a": {Concurrency: 4, OpsPerSec: 250.5, BytesPerSec: 20 << 20}, "b": {OpsPerSec: 10}}
	if len(got) != len(want) || got["a"] != want["a"] || got["b"] != want["b"] {
		t.Fatalf("limits %+v, want %+v", got, want)
	}
}
