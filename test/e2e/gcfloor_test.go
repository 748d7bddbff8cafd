package e2e

import (
	"io"
	"regexp"
	"strconv"
	"testing"
)

// TestGCHeapFloor: 'cairn serve' raises the GC percent while its live heap
// is small (package gcfloor), and a GOGC the operator set is kept as given.
func TestGCHeapFloor(t *testing.T) {
	fresh := startNode(t, t.TempDir())
	if p := gcPercent(t, fresh); p <= 100 {
		t.Errorf("a fresh node's go_gc_gogc_percent is %d, want above GOGC's 100 (the heap floor)", p)
	}
	if err := fresh.stop(); err != nil {
		t.Errorf("clean shutdown: %v\n%s", err, fresh.stderr)
	}

	t.Setenv("GOGC", "150")
	set := startNode(t, t.TempDir())
	if p := gcPercent(t, set); p != 150 {
		t.Errorf("with GOGC=150 the node's go_gc_gogc_percent is %d, want the operator's 150", p)
	}
	if err := set.stop(); err != nil {
		t.Errorf("clean shutdown: %v\n%s", err, set.stderr)
	}
}

// gcPercent reads go_gc_gogc_percent from the node's admin /metrics.
func gcPercent(t *testing.T, p *proc) int {
	t.Helper()
	resp, err := httpClient.Get("http://" + adminAddr(t, p) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go_gc_gogc_percent (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no go_gc_gogc_percent in the node's metrics")
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("go_gc_gogc_percent %q: %v", m[1], err)
	}
	return int(v)
}
