package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/reconcile"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
)

// replNode is a started node with one tenant, acme, and its token.
type replNode struct {
	*Node
	token string
}

func startReplNode(t *testing.T, specs ...BackendSpec) replNode {
	t.Helper()
	return startReplNodeWith(t, nil, specs...)
}

// startReplNodeWith is startReplNode with mod applied to the config.
func startReplNodeWith(t *testing.T, mod func(*Config), specs ...BackendSpec) replNode {
	t.Helper()
	tok, sum, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth = server.Auth{Tenants: map[string][][32]byte{"acme": {sum}}}
	cfg.Replication = Replication{Backends: specs}
	if mod != nil {
		mod(&cfg)
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return replNode{n, tok}
}

func (n replNode) do(t *testing.T, method, key, body string) (int, string) {
	t.Helper()
	code, _, b := n.doH(t, method, "/v1/tenants/acme/docs/"+key, body, nil)
	return code, b
}

// run asks the admin endpoint for a waited round of acme on every backend.
func (n replNode) run(t *testing.T, query string) api.ReconcileRun {
	t.Helper()
	resp, err := http.Post("http://"+n.AdminAddr()+"/v1/admin/reconcile/run?wait=1&tenant=acme"+query, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out api.ReconcileRun
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("run: %s %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (n replNode) status(t *testing.T) api.ReconcileStatus {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr() + "/v1/admin/reconcile")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out api.ReconcileStatus
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMissingFSDirectoryRefused: a node does not start on an fs backend
// whose directory is not there (a typo, a volume not mounted), and makes
// nothing there.
func TestMissingFSDirectoryRefused(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "backnd")
	spec, err := ParseBackendSpec("local=fs:" + missing)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Replication = Replication{Backends: []BackendSpec{spec}}
	n, err := Start(context.Background(), cfg)
	if err == nil {
		n.Shutdown(context.Background())
		t.Fatal("a node started on a backend directory that does not exist")
	}
	if !errors.Is(err, fault.ErrConfig) || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "mkdir -p "+missing) {
		t.Errorf("Start: %v; want a config error saying the directory does not exist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("the refused start made the directory: %v", err)
	}
}

// TestReplicateThroughSharedFS: two nodes with their own data directories
// share one fs backend directory; a write and then a delete on A reach B
// after a round on each, and the admin endpoint reports the rounds.
func TestReplicateThroughSharedFS(t *testing.T) {
	dir := t.TempDir()
	spec, err := ParseBackendSpec("shared=fs:" + dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := startReplNode(t, spec), startReplNode(t, spec)

	if code, body := a.do(t, "PUT", "k1", `{"v":1}`); code != 201 {
		t.Fatalf("PUT on A: %d %s", code, body)
	}
	a.run(t, "")
	rb := b.run(t, "")
	if len(rb.Rounds) != 1 || rb.Rounds[0].Error != "" || rb.Rounds[0].Actions["download"] != 1 {
		t.Fatalf("round on B: %+v; want one download", rb.Rounds)
	}
	if code, body := b.do(t, "GET", "k1", ""); code != 200 || body != `{"v":1}` {
		t.Fatalf("GET on B after the rounds: %d %q; want 200 {\"v\":1}", code, body)
	}

	if code, body := a.do(t, "DELETE", "k1", ""); code != 204 && code != 200 {
		t.Fatalf("DELETE on A: %d %s", code, body)
	}
	a.run(t, "")
	b.run(t, "")
	if code, _ := b.do(t, "GET", "k1", ""); code != 404 {
		t.Fatalf("GET on B after the delete replicated: %d, want 404", code)
	}
	// One more round on each finds nothing to do.
	for name, n := range map[string]replNode{"A": a, "B": b} {
		if r := n.run(t, ""); r.Rounds[0].Applied != 0 {
			t.Errorf("round on %s after convergence applied %d actions (%v), want 0", name, r.Rounds[0].Applied, r.Rounds[0].Actions)
		}
	}

	st := b.status(t)
	if len(st.Backends) != 1 || st.Backends[0].Name != "shared" || st.Backends[0].Breaker != "closed" {
		t.Fatalf("status: %+v; want backend shared, breaker closed", st)
	}
	var found bool
	for _, tp := range st.Backends[0].Tenants {
		if tp.Tenant == "acme" {
			found = true
			// Scanned 0: the digests matched and the round listed nothing.
			if tp.Last == nil || tp.Last.Scanned > 1 || tp.LastError != "" || tp.Running {
				t.Errorf("acme's progress: %+v (last %+v); want a finished round that scanned at most 1 key", tp, tp.Last)
			}
		}
	}
	if !found {
		t.Errorf("status has no progress for acme: %+v", st)
	}
}

// TestUploaderFastPath: a commit reaches the backend through the change feed
// and the uploader, without a round being asked for.
func TestUploaderFastPath(t *testing.T) {
	be := mem.New("m")
	a := startReplNode(t, BackendSpec{Name: "m", Backend: be})
	if code, body := a.do(t, "PUT", "fast", `{"v":1}`); code != 201 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	// The uploader runs on the engine's goroutine: poll with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := be.Stat(context.Background(), "acme", "fast"); err == nil {
			break
		} else if !errors.Is(err, fault.ErrNotFound) || time.Now().After(deadline) {
			t.Fatalf("the backend never got the write: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBackendDownNeverBlocksLocalIO: with a backend whose every call fails,
// writes and reads answer at once, rounds report the failure, and the node
// shuts down promptly.
func TestBackendDownNeverBlocksLocalIO(t *testing.T) {
	be := mem.New("down")
	be.SetFault(func(op, tenant, key string) error {
		return fault.New(fault.Transient, fault.Context{}, "injected: backend down")
	})
	n := startReplNode(t, BackendSpec{Name: "down", Backend: be})
	for i := range 50 {
		start := time.Now()
		key := fmt.Sprintf("k%d", i)
		if code, body := n.do(t, "PUT", key, `{"i":1}`); code != 201 {
			t.Fatalf("PUT %s: %d %s", key, code, body)
		}
		if code, _ := n.do(t, "GET", key, ""); code != 200 {
			t.Fatalf("GET %s: %d", key, code)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("PUT+GET %s took %v with the backend down", key, d)
		}
	}
	r := n.run(t, "&backend=down")
	if len(r.Rounds) != 1 || r.Rounds[0].Error == "" {
		t.Fatalf("round against a down backend: %+v; want an error", r.Rounds)
	}
	if st := n.status(t); len(st.Backends) != 1 || st.Backends[0].Name != "down" {
		t.Fatalf("status: %+v", st)
	}
	start := time.Now()
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown took %v with the backend down", d)
	}
}

func TestReconcileRunErrors(t *testing.T) {
	n := startReplNode(t)
	resp, err := http.Post("http://"+n.AdminAddr()+"/v1/admin/reconcile/run", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("run with no backends: %d, want 409", resp.StatusCode)
	}
	m := startReplNode(t, BackendSpec{Name: "m", Backend: mem.New("m")})
	for q, want := range map[string]int{"?backend=nope": 404, "?tenant=Bad!": 400, "?tenant=acme": 202,
		"?tenant=nope": 404, "?tenant=nope&wait=1": 404, "?wait=yes": 400, "?tenant=acme&confirm=on": 400,
		"?tenant=acme&wait=true&confirm=0": 200} {
		resp, err := http.Post("http://"+m.AdminAddr()+"/v1/admin/reconcile/run"+q, "", bytes.NewReader(nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("run%s: %d, want %d", q, resp.StatusCode, want)
		}
	}
}

func TestParseBackendSpec(t *testing.T) {
	for _, tt := range []struct{ in, err string }{
		{"a=fs:/tmp/x", ""},
		{"b=s3://bucket/prefix?endpoint=127.0.0.1:9000&insecure=1", ""},
		{"nofs", "want NAME=fs:/path"},
		{"Bad=fs:/x", `name "Bad"`},
		{"a=fs:", "needs a directory"},
		{"a=http://x", "want fs:/path or s3://"},
		{"a=s3://bucket?what=1", "unknown parameter what"},
		// A secret given in the URL is refused without being repeated.
		{"a=s3://AKID:TOPSECRET1@bucket/p?endpoint=h:1", "no user info"},
		{"a=s3://bucket/p?endpoint=h:1&secret_key=TOPSECRET2", "unknown parameter secret_key"},
		{"a=s3://AKID:TOPSECRET3@bucket/%zz", "not a URL"},
		{"a=S3://AKID:TOPSECRET4@bucket", "want fs:/path or s3://"},
		{"a=s3:AKID:TOPSECRET5@bucket", "want fs:/path or s3://"},
		{"a=s3://bucket/p?endpoint=h:1#TOPSECRET6", "no user info"},
	} {
		_, err := ParseBackendSpec(tt.in)
		if err != nil && strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("ParseBackendSpec(%q) = %v: the secret is repeated", tt.in, err)
		}
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("ParseBackendSpec(%q): %v", tt.in, err)
		case tt.err != "" && (err == nil || !errors.Is(err, fault.ErrConfig) || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "--backend")):
			t.Errorf("ParseBackendSpec(%q) = %v; want a config error naming --backend and %q", tt.in, err, tt.err)
		}
	}
}

// TestMissingBucketFailsStart: an S3 backend that cannot be reached at
// start stops the start of a node with an empty data directory, which
// would restore from it, with a configuration error naming the flag.
func TestMissingBucketFailsStart(t *testing.T) {
	spec, err := ParseBackendSpec("b=s3://nobucket/p?endpoint=127.0.0.1:1&insecure=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	cfg := testConfig(t)
	cfg.Replication.Backends = []BackendSpec{spec}
	_, err = Start(context.Background(), cfg)
	if !errors.Is(err, fault.ErrConfig) || !strings.Contains(err.Error(), "--backend b=s3://nobucket") ||
		!strings.Contains(err.Error(), "holds no documents") {
		t.Fatalf("Start with an unreachable bucket: %v; want a config error naming --backend and the empty directory", err)
	}
	if n := strings.Count(err.Error(), "node.start"); n != 1 {
		t.Errorf("Start: %v; want the operation named once", err)
	}
}

// TestUnreachableBucketWithData: a node whose store holds documents starts
// without an S3 backend that does not answer, as a running node rides out
// a partition, serves its documents, and says so once with the runbook's
// entry; the backend's breaker opens at its first round.
func TestUnreachableBucketWithData(t *testing.T) {
	var cfg Config
	n, tok := startAcme(t, func(c *Config) { cfg = *c })
	rn := replNode{n, tok}
	if code, body := rn.do(t, "PUT", "k", `{"v":1}`); code != 201 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	spec, err := ParseBackendSpec("b=s3://bucket/p?endpoint=127.0.0.1:1&insecure=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	logs := &proctest.SyncBuffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	cfg.Replication.Backends = []BackendSpec{spec}
	cfg.Replication.Resilience = resilience.Config{MaxAttempts: 1}
	n, err = Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start with data and an unreachable bucket: %v", err)
	}
	defer n.Shutdown(context.Background())
	rn = replNode{n, tok}
	if code, body := rn.do(t, "GET", "k", ""); code != 200 || !strings.Contains(body, `"v":1`) {
		t.Errorf("GET after the start: %d %s", code, body)
	}
	lines := logLines(t, logs.String(), msgBackendUnreachable)
	if len(lines) != 1 || lines[0]["level"] != "WARN" || lines[0]["runbook"] != runbookPartition || lines[0]["backend"] != "b" {
		t.Errorf("log lines %q: %v; want one WARN naming the backend and the runbook's entry", msgBackendUnreachable, lines)
	}
}

// TestBackendLimitsConfig: limits for a backend that is not configured,
// or out of range, stop the start with a configuration error.
func TestBackendLimitsConfig(t *testing.T) {
	for _, tt := range []struct {
		limits map[string]reconcile.Limits
		want   string
	}{
		{map[string]reconcile.Limits{"nope": {Concurrency: 2}}, `backend limits for "nope"`},
		{map[string]reconcile.Limits{"m": {OpsPerSec: -1}}, "ops/s -1"},
	} {
		cfg := testConfig(t)
		cfg.Replication.Backends = []BackendSpec{{Name: "m", Backend: mem.New("m")}}
		cfg.Replication.Limits = tt.limits
		n, err := Start(context.Background(), cfg)
		if err == nil {
			n.Shutdown(context.Background())
		}
		if !errors.Is(err, fault.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Start with limits %v: %v; want a config error with %q", tt.limits, err, tt.want)
		}
	}
}

func TestFillRunning(t *testing.T) {
	start := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	now := start.Add(10 * time.Second)
	f := func(v float64) *float64 { return &v }
	for _, tt := range []struct {
		name     string
		p        reconcile.Progress
		pct, eta *float64
		rate     float64
	}{
		{"no estimate", reconcile.Progress{Running: true, Started: start, Scanned: 50}, nil, nil, 5},
		{"a quarter", reconcile.Progress{Running: true, Started: start, Scanned: 250, Estimate: 1000}, f(25), f(30), 25},
		{"grown past the estimate", reconcile.Progress{Running: true, Started: start, Scanned: 1200, Estimate: 1000}, nil, nil, 120},
		{"at the estimate", reconcile.Progress{Running: true, Started: start, Scanned: 1000, Estimate: 1000}, nil, nil, 100},
		{"nothing scanned yet", reconcile.Progress{Running: true, Started: start, Estimate: 1000}, f(0), nil, 0},
	} {
		var tp api.TenantProgress
		fillRunning(&tp, tt.p, now)
		eq := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
		if !eq(tp.PercentDone, tt.pct) || !eq(tp.ETASeconds, tt.eta) || tp.KeysPerSecond != tt.rate || tp.Started == nil {
			t.Errorf("%s: percent %v, eta %v, rate %v; want %v, %v, %v", tt.name, ptr(tp.PercentDone), ptr(tp.ETASeconds),
				tp.KeysPerSecond, ptr(tt.pct), ptr(tt.eta), tt.rate)
		}
	}
}

func ptr(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestReconcileStatusEstimateAndLag: after a whole round the status
// carries the tenant's size (the next round's percent base) and the
// backend's replication lag.
func TestReconcileStatusEstimateAndLag(t *testing.T) {
	n := startReplNode(t, BackendSpec{Name: "m", Backend: mem.New("m")})
	for i := range 3 {
		if code, body := n.do(t, "PUT", fmt.Sprintf("k%d", i), `{}`); code/100 != 2 {
			t.Fatalf("PUT: %d %s", code, body)
		}
	}
	if r := n.run(t, ""); len(r.Rounds) != 1 || r.Rounds[0].Error != "" {
		t.Fatalf("run: %+v", r)
	}
	st := n.status(t)
	if len(st.Backends) != 1 || len(st.Backends[0].Tenants) != 1 {
		t.Fatalf("status %+v", st)
	}
	b := st.Backends[0]
	if tp := b.Tenants[0]; tp.Estimate != 3 || tp.Running || tp.PercentDone != nil {
		t.Fatalf("tenant progress %+v; want estimate 3, idle", tp)
	}
	if b.LagSeconds < 0 {
		t.Fatalf("lag %v", b.LagSeconds)
	}
}

// TestShutdownUploadsPendingChanges: a node stopped gracefully uploads the
// changes its uploader had not yet (here held back by a long coalesce
// window) before it closes its backends.
func TestShutdownUploadsPendingChanges(t *testing.T) {
	b := mem.New("shared")
	n := startReplNodeWith(t, func(c *Config) { c.Replication.CoalesceWindow = time.Hour }, BackendSpec{Name: "shared", Backend: b})
	put := func(key string) {
		t.Helper()
		if code, body := n.do(t, "PUT", key, `{"v":1}`); code != 201 {
			t.Fatalf("PUT %s: %d %s", key, code, body)
		}
	}
	// The start's first pass must be over first: a round of it that ran
	// after the writes would upload them all. Polled: it runs on the
	// engine's goroutine.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if p, _ := n.repl.engines[0].Progress("acme"); !p.Last.Started.IsZero() && !p.Running {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("the start's first round of acme did not end within 30s")
		}
	}
	// The first change is uploaded at once; the window then holds back the
	// next ones. Polled: the upload happens on the engine's goroutine.
	put("k1")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := b.Get(context.Background(), "acme", "k1"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("k1 not uploaded: %v", err)
		}
	}
	put("k2")
	put("k3")
	if _, err := b.Get(context.Background(), "acme", "k3"); err == nil {
		t.Fatal("k3 was uploaded within the coalesce window: the test shows nothing")
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"k1", "k2", "k3"} {
		if _, err := b.Get(context.Background(), "acme", key); err != nil {
			t.Errorf("%s after a graceful stop: %v; want it in the backend", key, err)
		}
	}
}

// TestChangeFeedTellsOwnWrites: the feed tells, per tenant, whether a
// version this node wrote was among the commits since it last looked, so
// that downloads and restores are not counted as replication lag.
func TestChangeFeedTellsOwnWrites(t *testing.T) {
	f := newChangeFeed()
	f.self.Store(7)
	for _, c := range []struct {
		tenant string
		writer uint64
	}{{"a", 9}, {"b", 9}, {"b", 7}, {"c", 7}, {"c", 9}} {
		f.mark(&store.Record{Tenant: c.tenant, Version: doc.Version{Writer: c.writer}})
	}
	select {
	case <-f.wake:
	default:
		t.Fatal("the feed was not woken")
	}
	if got, want := f.take(), map[string]bool{"a": false, "b": true, "c": true}; !maps.Equal(got, want) {
		t.Fatalf("take = %v, want %v", got, want)
	}
	if got := f.take(); len(got) != 0 {
		t.Fatalf("a second take = %v, want nothing", got)
	}
}

// TestStatusShowsGuardHold: a tenant whose deletions the mass-deletion
// guard holds says so in the replication status (held), which the console
// and cairn reconcile status show, until its deletions are confirmed.
func TestStatusShowsGuardHold(t *testing.T) {
	spec, err := ParseBackendSpec("shared=fs:" + t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The feed off: b is to meet the deletions in its round. Through the
	// feed they may come in several polls, each under the guard's share,
	// as a's uploader drains them.
	guard := func(c *Config) {
		c.Replication.Guard = reconcile.Guard{MaxShare: 0.25, Floor: 2}
		c.Replication.ClaimCheck = time.Hour
		c.Replication.FeedOff = true
	}
	a := startReplNodeWith(t, guard, spec)
	for i := range 20 {
		if code, _ := a.do(t, "PUT", fmt.Sprintf("k%02d", i), `{}`); code != 201 {
			t.Fatalf("put: %d", code)
		}
	}
	a.run(t, "")
	b := startReplNodeWith(t, guard, spec)
	b.run(t, "")
	for i := range 10 {
		if code, _ := a.do(t, "DELETE", fmt.Sprintf("k%02d", i), ""); code != 204 {
			t.Fatalf("delete: %d", code)
		}
	}
	a.run(t, "")
	held := func() bool {
		for _, bs := range b.status(t).Backends {
			for _, tp := range bs.Tenants {
				if tp.Tenant == "acme" {
					return tp.Held
				}
			}
		}
		return false
	}
	b.run(t, "")
	if !held() {
		t.Fatal("10 of 20 documents deleted: the status does not say the guard holds acme")
	}
	b.run(t, "&confirm=1")
	if held() {
		t.Fatal("still held after the deletions were confirmed")
	}
}
