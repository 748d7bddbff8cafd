package node

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/backend/fs"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
)

// startCollectingNode is startReplNode with the collector's clock skewed
// by *skew and a one-hour grace period.
func startCollectingNode(t *testing.T, skew *atomic.Int64, specs ...BackendSpec) replNode {
	t.Helper()
	tok, sum, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth = server.Auth{Tenants: map[string][][32]byte{"acme": {sum}}}
	cfg.Replication = Replication{Backends: specs, GCGrace: time.Hour,
		gcNow: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return replNode{n, tok}
}

func (n replNode) collect(t *testing.T) (collected, trimmed int) {
	t.Helper()
	st, err := n.repl.collector.Pass(context.Background())
	if err != nil {
		t.Fatalf("collector pass: %v (%+v)", err, st)
	}
	return st.Collected, st.Trimmed
}

// upload drains the change log to every backend now.
func (n replNode) upload(t *testing.T) {
	t.Helper()
	for _, e := range n.repl.engines {
		if _, err := e.Upload(context.Background(), "acme"); err != nil {
			t.Fatal(err)
		}
	}
}

func (n replNode) changeLog(t *testing.T) int {
	t.Helper()
	c := 0
	for _, err := range n.store.Changes(context.Background(), "acme", 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		c++
	}
	return c
}

func metricsText(t *testing.T, n replNode) string {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestCollectorThroughSharedFS: two nodes share an fs backend. A delete on
// A is kept through the grace period (B learns it), then A's collector
// removes it from A and the backend, B's rounds do not bring it back, and
// B collects its own tombstone. The change log is trimmed once uploaded,
// and the metrics count it all.
func TestCollectorThroughSharedFS(t *testing.T) {
	dir := t.TempDir()
	spec, err := ParseBackendSpec("shared=fs:" + dir)
	if err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64
	a, b := startCollectingNode(t, &skew, spec), startCollectingNode(t, &skew, spec)
	view, err := fs.Open("shared", dir) // the test's own view of the bucket
	if err != nil {
		t.Fatal(err)
	}

	for _, k := range []string{"k1", "k2"} {
		if code, body := a.do(t, "PUT", k, `{"v":1}`); code != 201 {
			t.Fatalf("PUT %s on A: %d %s", k, code, body)
		}
	}
	a.run(t, "")
	b.run(t, "")
	if code, _ := a.do(t, "DELETE", "k1", ""); code != 204 && code != 200 {
		t.Fatalf("DELETE on A: %d", code)
	}
	a.run(t, "")
	a.upload(t) // the engine's own uploader may not have drained yet
	collected, trimmedBefore := a.collect(t)
	if collected != 0 {
		t.Fatalf("A collected %d tombstones within the grace period", collected)
	}
	b.run(t, "")
	if code, _ := b.do(t, "GET", "k1", ""); code != 404 {
		t.Fatalf("GET k1 on B within the grace period: %d, want 404", code)
	}

	skew.Store(int64(2 * time.Hour))
	collected, trimmed := a.collect(t)
	if collected != 1 || trimmedBefore+trimmed != 3 || a.changeLog(t) != 0 {
		t.Fatalf("A's pass past the grace period: %d collected, %d+%d trimmed, %d log entries left; want 1, 3 (two puts, a delete), 0",
			collected, trimmedBefore, trimmed, a.changeLog(t))
	}
	if _, err := view.Stat(context.Background(), "acme", "k1"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("the backend still holds k1: %v", err)
	}
	rb := b.run(t, "")
	if len(rb.Rounds) != 1 || rb.Rounds[0].Error != "" || rb.Rounds[0].Applied != 0 {
		t.Fatalf("B's round after A's collection: %+v, want nothing applied", rb.Rounds)
	}
	if _, err := view.Stat(context.Background(), "acme", "k1"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("B brought k1 back to the backend: %v", err)
	}
	if n, _ := b.collect(t); n != 1 {
		t.Fatalf("B collected %d, want its tombstone", n)
	}
	cs := b.status(t).Collector
	if cs == nil || cs.Grace != "1h0m0s" || cs.Interval != "0s" || cs.LastPass == nil ||
		cs.LastPass.Collected != 1 || cs.LastPass.Examined != 1 || cs.LastPass.Error != "" {
		t.Fatalf("B's collector status: %+v (last pass %+v)", cs, lastPass(cs))
	}
	for _, n := range []replNode{a, b} {
		if code, _ := n.do(t, "GET", "k1", ""); code != 404 {
			t.Fatalf("GET k1 after the collections: %d, want 404", code)
		}
		if code, body := n.do(t, "GET", "k2", ""); code != 200 || body != `{"v":1}` {
			t.Fatalf("GET k2 after the collections: %d %q", code, body)
		}
		if m := metricsText(t, n); !strings.Contains(m, "cairn_gc_tombstones_collected_total 1\n") || !strings.Contains(m, "cairn_gc_changes_trimmed_total") {
			t.Fatalf("metrics lack the collection:\n%s", grepLines(m, "cairn_gc_"))
		}
	}
}

// TestCollectorWithoutBackends: a node that replicates nowhere still
// trims its change log (nothing reads it) and collects its tombstones.
func TestCollectorWithoutBackends(t *testing.T) {
	var skew atomic.Int64
	n := startCollectingNode(t, &skew)
	for _, k := range []string{"a", "b", "c"} {
		n.do(t, "PUT", k, `{}`)
	}
	n.do(t, "DELETE", "b", "")
	if collected, trimmed := n.collect(t); collected != 0 || trimmed != 4 || n.changeLog(t) != 0 {
		t.Fatalf("pass: %d collected, %d trimmed; want 0 and 4", collected, trimmed)
	}
	skew.Store(int64(2 * time.Hour))
	if collected, _ := n.collect(t); collected != 1 {
		t.Fatalf("pass past the grace period: %d collected, want 1", collected)
	}
	if code, _ := n.do(t, "PUT", "b", `{"again":1}`); code != 201 {
		t.Fatalf("PUT after the collection: %d, want 201", code)
	}
}

func lastPass(cs *api.CollectorStatus) any {
	if cs == nil {
		return nil
	}
	return cs.LastPass
}

func grepLines(s, substr string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
