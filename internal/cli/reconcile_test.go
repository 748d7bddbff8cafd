package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
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
	n, err := node.Start(context.Background(), node.Config{
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
		{[]string{"reconcile", "quarantine"}, 0, []string{"no damaged objects quarantined"}, ""},
		{[]string{"reconcile"}, exitUsage, nil, "want status, run or quarantine"},
		{[]string{"reconcile", "sideways"}, exitUsage, nil, "want status, run or quarantine"},
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
	// the uploader was first: either way a later round has nothing to do,
	// and its digests say so without listing (scanned 0); a scrub reads
	// the one object and finds it in sync.
	_, stdout, _ := run(t, env, "", "reconcile", "run", "--wait")
	if !strings.Contains(stdout, "acme    0        0") {
		t.Errorf("a round after the upload: %q; want nothing scanned or applied", stdout)
	}
	_, stdout, _ = run(t, env, "", "reconcile", "run", "--wait", "--scrub")
	if !strings.Contains(stdout, "in_sync=1") {
		t.Errorf("a scrub after the upload: %q; want in_sync=1", stdout)
	}
	if code, _, stderr := run(t, env, "", "reconcile", "run", "--scrub"); code != exitFail || !strings.Contains(stderr, "scrub=1 needs wait=1") {
		t.Errorf("a scrub without --wait: exit %d, %q", code, stderr)
	}
}

func TestServeRefusesBadReplicationSettings(t *testing.T) {
	dir := t.TempDir()
	real, link := filepath.Join(dir, "be"), filepath.Join(dir, "be-link")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--backend", "x"}, nil, `--backend "x"`},
		{[]string{"--backend", "a=ftp://x"}, nil, "want fs:/path or s3://"},
		{[]string{"--backend", "a=fs:relative/dir"}, nil, "fs: needs an absolute path"},
		{[]string{"--backend", "a=fs:/srv/be", "--backend", "b=fs:/srv/be/"}, nil, "the same place as --backend a=fs:/srv/be"},
		{[]string{"--backend", "a=fs:" + real, "--backend", "b=fs:" + link}, nil, "the same place as --backend a=fs:" + real},
		{[]string{"--backend", "a=fs:/srv/be", "--backend", "a=fs:/srv/other"}, nil, "the name a is --backend a=fs:/srv/be's too"},
		{[]string{"--backend", "a=fs:/srv/be", "--backend", "b=fs:/srv/be/sub"}, nil, "one directory holds the other's"},
		{[]string{"--backend", "a=fs:/srv/be/sub", "--backend", "b=fs:/srv/be"}, nil, "one directory holds the other's"},
		{[]string{"--backend", "a=s3://bkt/p?endpoint=h:9000", "--backend", "b=s3://bkt/p/?endpoint=h:9000&insecure=1"}, nil, "the same place as --backend a="},
		{nil, map[string]string{"CAIRN_BACKEND": "a=fs:/tmp/a,b=s3://bkt?bogus=1"}, "unknown parameter bogus"},
		{[]string{"--conflict-policy", "acme"}, nil, `--conflict-policy "acme": want TENANT=`},
		{[]string{"--conflict-policy", "acme=newest"}, nil, `--conflict-policy "acme=newest"`},
		{[]string{"--conflict-policy", "Acme=lww"}, nil, `--conflict-policy "Acme=lww"`},
		{[]string{"--conflict-policy", "demo=manual", "--conflict-policy", "demo=lww"}, nil, "tenant demo has a policy already"},
		{[]string{"--conflict-policy", "acem=manual"}, nil, "no --tenant names acem (the node's tenants: demo)"},
		{[]string{"--reconcile-interval", "-1s"}, nil, "--reconcile-interval -1s"},
		{[]string{"--gc-interval", "-1s"}, nil, "--gc-interval -1s: want 0 (never) or more"},
		{[]string{"--pack-interval", "-1s"}, nil, "--pack-interval -1s: want 0 (no packs) or more"},
		{[]string{"--pack-min-docs", "0"}, nil, "--pack-min-docs 0: want 1 or more"},
		{[]string{"--pack-part-bytes", "1GiB"}, nil, "want at most 67108864 bytes"},
		{[]string{"--coalesce-window", "-5ms"}, nil, "--coalesce-window -5ms: want 0 (none) or more"},
		{nil, map[string]string{"CAIRN_COALESCE_WINDOW": "soon"}, "CAIRN_COALESCE_WINDOW"},
		{[]string{"--feed-poll", "-1s"}, nil, "--feed-poll -1s: want 0 (off) or more"},
		{nil, map[string]string{"CAIRN_FEED_RETENTION": "-5m"}, "CAIRN_FEED_RETENTION=-5m0s: want 0 (--gc-grace) or more"},
		{[]string{"--scrub-rate", "-1"}, nil, "--scrub-rate -1: want 0 (no scrub) or a positive number"},
		{[]string{"--scrub-rate", "NaN"}, nil, "--scrub-rate NaN: want 0 (no scrub)"},
		{nil, map[string]string{"CAIRN_SCRUB_RATE": "+Inf"}, "CAIRN_SCRUB_RATE=+Inf: want 0 (no scrub)"},
		{[]string{"--gc-grace", "30s"}, nil, "--gc-grace 30s: want more than --reconcile-interval (30s)"},
		{[]string{"--reconcile-interval", "2h", "--gc-grace", "1h"}, nil, "--gc-grace 1h0m0s: want more than --reconcile-interval (2h0m0s)"},
		{[]string{"--backend", "a=fs:/tmp/a", "--backend-concurrency", "b=4"}, nil, `--backend-concurrency "b=4": no --backend named "b"`},
		{[]string{"--backend", "a=fs:/tmp/a", "--backend-concurrency", "a=0"}, nil, `--backend-concurrency "a=0": want a whole number`},
		{[]string{"--backend", "a=fs:/tmp/a", "--backend-ops", "a"}, nil, `--backend-ops "a": want NAME=VALUE`},
		{[]string{"--backend", "a=fs:/tmp/a", "--backend-ops", "a=-3"}, nil, `--backend-ops "a=-3": want calls per second`},
		{[]string{"--backend", "a=fs:/tmp/a"}, map[string]string{"CAIRN_BACKEND_BYTES": "a=lots"}, `CAIRN_BACKEND_BYTES="a=lots": want bytes per second`},
		{[]string{"--backend", "a=fs:/tmp/a"}, map[string]string{"CAIRN_BACKEND_BYTES": "a=20MiB,a=30MiB"}, `CAIRN_BACKEND_BYTES="a=30MiB": backend a has a limit already`},
		{[]string{"--backend", "a=fs:/tmp/a", "--backend-ops", "a=5", "--backend-ops", "a=6"}, nil, `--backend-ops "a=6": backend a has a limit already`},
	} {
		args := append([]string{"serve", "--data-dir", filepath.Join(dir, "data")}, tt.args...)
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

func TestRoundsLine(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	st := api.ReconcileStatus{Backends: []api.BackendStatus{
		{Name: "local", Tenants: []api.TenantProgress{
			{Tenant: "acme", Running: true, Scanned: 250, Estimate: 1000, PercentDone: f(25), KeysPerSecond: 125, ETASeconds: f(6)},
			{Tenant: "idle", Scanned: 7},
			{Tenant: "new", Running: true, Scanned: 40, KeysPerSecond: 20},
		}},
		{Name: "s3", Tenants: []api.TenantProgress{{Tenant: "acme", Running: true, Scanned: 1}}},
	}}
	for _, tt := range []struct {
		backend, tenant string
		bar             bool
		want            string
	}{
		{"local", "acme", true, "local/acme [#####---------------] 25% 250/1000 keys 125/s ETA 6s"},
		{"local", "acme", false, "local/acme 25% 250/1000 keys 125/s ETA 6s"},
		{"", "new", false, "local/new 40 keys 20/s"},
		{"", "acme", false, "local/acme 25% 250/1000 keys 125/s ETA 6s; s3/acme 1 keys"},
		{"local", "idle", false, ""},
	} {
		if got := roundsLine(st, tt.backend, tt.tenant, tt.bar); got != tt.want {
			t.Errorf("roundsLine(%q, %q, bar %v) = %q, want %q", tt.backend, tt.tenant, tt.bar, got, tt.want)
		}
	}
}

// TestRunWaitShowsProgress: a second node over the same backend
// downloads the first node's documents at 100 ops/s, so its round lasts a
// while; run --wait prints its progress (plain lines: stderr is not a
// terminal) before the results, and status shows the estimate after. The
// node's first pass at start restores the tenant too: the waited round
// either does the downloads, or carries that pass's round to its end and
// finds them done, or comes after it and finds the digests equal.
func TestRunWaitShowsProgress(t *testing.T) {
	progressEvery = 20 * time.Millisecond
	defer func() { progressEvery = 500 * time.Millisecond }()
	dir := t.TempDir()
	envA := startNodeOn(t, dir, reconcile.Limits{})
	for i := range 100 {
		if code, _, stderr := run(t, envA, "", "put", fmt.Sprintf("k%03d", i), "--data", `{}`); code != 0 {
			t.Fatalf("put: %s", stderr)
		}
	}
	if code, _, stderr := run(t, envA, "", "reconcile", "run", "--wait"); code != 0 {
		t.Fatalf("run on A: %s", stderr)
	}
	envB := startNodeOn(t, dir, reconcile.Limits{OpsPerSec: 100})
	code, stdout, stderr := run(t, envB, "", "reconcile", "run", "--wait", "--tenant", "acme")
	// A round after the startup pass's has nothing to list: the digests match.
	if code != 0 || !strings.Contains(stdout, "download=100") && !strings.Contains(stdout, "in_sync=100") && !strings.Contains(stdout, "acme    0        0") {
		t.Fatalf("run on B: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "local/acme ") || !strings.Contains(stderr, " keys") || strings.Contains(stderr, "\r") {
		t.Fatalf("run --wait progress on stderr: %q; want plain lines naming local/acme", stderr)
	}
	_, stdout, _ = run(t, envB, "", "reconcile", "status")
	if !strings.Contains(stdout, "DONE") || !strings.Contains(stdout, "ETA") || !strings.Contains(stdout, "LAG") {
		t.Fatalf("status: %q", stdout)
	}
}

// startNodeOn runs a node in-process with tenant acme replicating to the
// fs backend in dir under limits.
func startNodeOn(t *testing.T, dir string, limits reconcile.Limits) map[string]string {
	t.Helper()
	tok, sum, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := node.ParseBackendSpec("local=fs:" + dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(context.Background(), node.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Auth: server.Auth{Tenants: map[string][][32]byte{"acme": {sum}}},
		Replication: node.Replication{Backends: []node.BackendSpec{spec},
			Limits: map[string]reconcile.Limits{"local": limits}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return map[string]string{"CAIRN_URL": "http://" + n.Addr(), "CAIRN_TOKEN": tok, "CAIRN_TENANT": "acme",
		"CAIRN_ADMIN_URL": "http://" + n.AdminAddr()}
}

// TestProgressOnTerminal: on a terminal the line is drawn in place (\r and
// erase-line), redrawn only when it changes, and cleared at the end. The
// status comes from a test server (the rendering loop is under test).
func TestProgressOnTerminal(t *testing.T) {
	progressEvery = 5 * time.Millisecond
	defer func() { progressEvery = 500 * time.Millisecond }()
	polls := make(chan struct{}, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"backends":[{"name":"local","breaker":"closed","tenants":[
			{"tenant":"acme","running":true,"scanned":500,"estimate":1000,"percent_done":50,"keys_per_second":100,"eta_seconds":5}]}]}`)
		select {
		case polls <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()
	var buf bytes.Buffer
	p := &progress{w: &buf, tty: true}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.poll(ctx, adminClient{base: srv.URL}, "", "") }()
	for range 3 {
		<-polls
	}
	cancel()
	<-done
	want := "\r\033[Klocal/acme [##########----------] 50% 500/1000 keys 100/s ETA 5s\r\033[K"
	if got := buf.String(); got != want {
		t.Fatalf("terminal output %q, want %q (drawn once, then cleared)", got, want)
	}
}

// TestReconcileQuarantine: an object damaged on the backend is repaired
// by a scrub, and 'cairn reconcile quarantine' lists what was damaged.
func TestReconcileQuarantine(t *testing.T) {
	tok, sum, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	be := mem.New("m")
	n, err := node.Start(context.Background(), node.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Auth:        server.Auth{Tenants: map[string][][32]byte{"acme": {sum}}},
		Replication: node.Replication{Backends: []node.BackendSpec{{Name: "m", Backend: be}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	env := map[string]string{"CAIRN_URL": "http://" + n.Addr(), "CAIRN_TOKEN": tok, "CAIRN_TENANT": "acme",
		"CAIRN_ADMIN_URL": "http://" + n.AdminAddr()}
	if code, _, stderr := run(t, env, "", "put", "a", "--data", `{"n":1}`); code != 0 {
		t.Fatalf("put: %d %s", code, stderr)
	}
	if code, _, stderr := run(t, env, "", "reconcile", "run", "--wait"); code != 0 {
		t.Fatalf("run: %d %s", code, stderr)
	}
	var etag string
	if err := be.Corrupt(context.Background(), "acme", "a", func(raw []byte) []byte {
		h, _ := backend.ParseHeader(raw)
		raw[h.Len-backend.ChecksumSize] ^= 1 // in the ETag: the round reads it
		etag = backend.ETagOf(raw)
		return raw
	}); err != nil {
		t.Fatal(err)
	}
	// Digests cannot see damage done behind the nodes' backs: the scrub
	// reads the object and finds it.
	if code, _, stderr := run(t, env, "", "reconcile", "run", "--wait", "--scrub"); code != 0 {
		t.Fatalf("run: %d %s", code, stderr)
	}
	code, stdout, stderr := run(t, env, "", "reconcile", "quarantine")
	for _, want := range []string{"BACKEND", "m ", "acme", " a ", etag, "checksum"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("quarantine: exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, want)
		}
	}
}

// TestReconcileStatusShowsCatchingUp: 'cairn reconcile status' names the
// tenants /readyz waits for and shows a tenant catching up with the
// documents seen and downloaded so far.
func TestReconcileStatusShowsCatchingUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"catching_up":["acme"],"backends":[{"name":"local","breaker":"closed","tenants":[
			{"tenant":"acme","running":true,"catching_up":true,"scanned":40,"downloaded":37}]}]}`)
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := reconcileStatus(context.Background(), adminClient{base: srv.URL}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"catching up (/readyz waits for them): acme\n", "catching up, running, 37 downloaded", " 40 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}

// TestServeWhileCatchingUpSetting: the flag, its environment twin and its
// config key set node.Config.ServeWhileCatchingUp.
func TestServeWhileCatchingUpSetting(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "cairn.json")
	if err := os.WriteFile(cfgFile, []byte(`{"serve-while-catching-up": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
		want bool
	}{
		"default": {want: false},
		"flag":    {args: []string{"--serve-while-catching-up"}, want: true},
		"env":     {env: map[string]string{"CAIRN_SERVE_WHILE_CATCHING_UP": "true"}, want: true},
		"config":  {args: []string{"--config", cfgFile}, want: true},
	} {
		fs, f := newServeFlags()
		if err := fs.Parse(append([]string{"--data-dir", dir}, c.args...)); err != nil {
			t.Fatal(err)
		}
		getenv := func(k string) string { return c.env[k] }
		if err := settle(fs, getenv, "config"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cfg, err := f.nodeConfig(Env{Stderr: io.Discard, Getenv: getenv})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.ServeWhileCatchingUp != c.want {
			t.Errorf("%s: ServeWhileCatchingUp %v, want %v", name, cfg.ServeWhileCatchingUp, c.want)
		}
	}
}

// TestReconcileStatusShowsFeed: 'cairn reconcile status' shows each
// tenant's change feed: what this node published, each peer's cursor and
// lag, and why a feed waits for a round.
func TestReconcileStatusShowsFeed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"backends":[{"name":"s3","breaker":"closed","tenants":[
			{"tenant":"acme","feed":{"published":12,"pending":3,"peers":{"0b":{"cursor":7,"lag_seconds":0.4},"0a":{"cursor":9,"lag_seconds":1.5}}}},
			{"tenant":"zed","feed":{"published":0,"pending":0,"peers":{"0a":{"cursor":2}},"fallback":"gap after seq 2 of node 0a"}},
			{"tenant":"yak","feed":{"published":1,"pending":0,"peers":{"0a":{"cursor":5}},"polled_at":"2026-12-06T12:00:00Z","error":"backend s3: list_blobs: timeout"}}]}]}`)
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := reconcileStatus(context.Background(), adminClient{base: srv.URL}, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	lines := strings.Split(got, "\n")
	var feed []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 4 && f[0] == "s3" && (f[1] == "acme" || f[1] == "zed" || f[1] == "yak") && f[4] != "" {
			feed = append(feed, strings.Join(f[:6], " "))
		}
	}
	want := []string{"s3 acme 12 3 0a 9", "s3 acme 12 3 0b 7", "s3 zed 0 0 0a 2", "s3 yak 1 0 0a 5"}
	if !slices.Equal(feed, want) {
		t.Errorf("feed rows %q, want %q:\n%s", feed, want, got)
	}
	for _, w := range []string{"PUBLISHED", "waiting for a round: gap after seq 2 of node 0a", "tailing",
		"not reading: backend s3: list_blobs: timeout (last read " + time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC).Local().Format(time.DateTime) + ")"} {
		if !strings.Contains(got, w) {
			t.Errorf("status lacks %q:\n%s", w, got)
		}
	}
}

// TestReconcileStatusShowsUploadError: the ERROR column shows the last
// upload's error beside the last round's.
func TestReconcileStatusShowsUploadError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"backends":[{"name":"local","breaker":"closed","tenants":[
			{"tenant":"acme","last_upload_error":"backend.put: read-only file system"},
			{"tenant":"beta","last_error":"round failed","last_upload_error":"backend.put: timeout"}]}]}`)
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := reconcileStatus(context.Background(), adminClient{base: srv.URL}, &out); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"upload: backend.put: read-only file system", "round failed; upload: backend.put: timeout"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("status lacks %q:\n%s", w, out.String())
		}
	}
}

// TestRoundActions: a round's ACTIONS column shows the damaged objects a
// scrub found and repaired, the keys left for the next round and the
// checkpoint it resumed after, beside its decisions.
func TestRoundActions(t *testing.T) {
	for _, tc := range []struct {
		r    api.RoundResult
		want string
	}{
		{api.RoundResult{}, "-"},
		{api.RoundResult{Actions: map[string]int{"in_sync": 4}}, "in_sync=4"},
		{api.RoundResult{Actions: map[string]int{"in_sync": 4}, Corrupt: 1, Repaired: 1}, "in_sync=4 corrupt=1 repaired=1"},
		{api.RoundResult{Raced: 2}, "raced=2"},
		{api.RoundResult{Actions: map[string]int{"download": 3}, ResumedAfter: "k0047"}, `download=3 resumed_after="k0047"`},
	} {
		if got := roundActions(&tc.r); got != tc.want {
			t.Errorf("roundActions(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

// TestStatusShowsHeld: a tenant the mass-deletion guard holds on a backend
// says so in its STATE.
func TestStatusShowsHeld(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.ReconcileStatus{Backends: []api.BackendStatus{{Name: "local", Breaker: "closed",
			Tenants: []api.TenantProgress{{Tenant: "acme", Held: true}, {Tenant: "shop"}}}}})
	}))
	defer srv.Close()
	var out strings.Builder
	if err := reconcileStatus(context.Background(), adminClient{base: srv.URL}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "idle, deletions held") || strings.Count(out.String(), "deletions held") != 1 {
		t.Errorf("status:\n%s", &out)
	}
}
