package reconcile

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/cairnstore/cairn/internal/backend/fs"
	"github.com/cairnstore/cairn/internal/store"
)

// BenchmarkCollectPass times one collector pass over a tenant of
// CAIRN_BENCH_KEYS documents (default 20,000) in sync with an fs backend:
// "scan" finds nothing to collect (the steady state: the cost of the
// sync-state scan), "collect" removes 10% of them as tombstones past the
// grace period (each a Get, a base read, a conditional backend delete and
// a store batch). Setup is not timed.
//
//	CAIRN_BENCH_KEYS=100000 go test -run '^$' -bench CollectPass -benchtime 1x ./internal/reconcile/
func BenchmarkCollectPass(b *testing.B) {
	n := 20000
	if s := os.Getenv("CAIRN_BENCH_KEYS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	for _, mode := range []string{"scan", "collect"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				c, want := collectFixture(b, n, mode == "collect")
				b.StartTimer()
				st, err := c.Pass(bg)
				b.StopTimer()
				if err != nil || st.Collected != want {
					b.Fatalf("pass: %+v, %v; want %d collected", st, err, want)
				}
				b.ReportMetric(float64(n), "keys")
				b.StartTimer()
			}
		})
	}
}

// collectFixture is a store of n documents in sync with an fs backend, a
// tenth of them deleted if tombstones (deletes synced too), and a
// collector whose clock is past the grace period.
func collectFixture(b *testing.B, n int, tombstones bool) (*Collector, int) {
	s := openStore(b, "a")
	be, err := fs.Open("b", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	e := newEngine(b, s, be, nil)
	items := make([]store.Item, 0, 1000)
	for i := 0; i < n; i += len(items) {
		items = items[:0]
		for j := i; j < min(n, i+1000); j++ {
			items = append(items, store.Item{Key: fmt.Sprintf("key-%08d", j), Body: []byte(`{"v":1}`)})
		}
		if _, err := s.PutBatch(bg, tenant, items); err != nil {
			b.Fatal(err)
		}
	}
	want := 0
	if tombstones {
		for i := 0; i < n; i += 10 {
			del(b, s, fmt.Sprintf("key-%08d", i))
			want++
		}
	}
	if _, err := e.Round(bg, tenant); err != nil {
		b.Fatal(err)
	}
	clk := &testClock{}
	clk.pastGrace()
	c, err := NewCollector(CollectorConfig{Store: s, Engines: []*Engine{e}, Grace: testGrace, Now: clk.now})
	if err != nil {
		b.Fatal(err)
	}
	return c, want
}
