package reconcile

import (
	"fmt"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/store"
)

// BenchmarkRestore restores a pack of 20,000 small documents (mem backend,
// the default part size) into an empty store with the node's default
// durability (fsync per group commit): per-document CPU (the process's,
// every goroutine and Pebble's included) and allocations of the restore,
// and documents a second. On a shared machine the CPU per document is the
// figure to compare; documents a second follow the machine's load.
func BenchmarkRestore(b *testing.B) {
	const n = 20_000
	be := mem.New("b")
	origin := openStore(b, "origin")
	var items []store.Item
	for i := range n {
		items = append(items, store.Item{Key: fmt.Sprintf("doc-%07d", i), Body: fmt.Appendf(nil, `{"n":%d,"v":0,"pad":"small document"}`, i)})
		if len(items) == 1000 {
			if _, err := origin.PutBatch(bg, tenant, items); err != nil {
				b.Fatal(err)
			}
			items = items[:0]
		}
	}
	oe := newEngine(b, origin, be, nil)
	if _, err := oe.Upload(bg, tenant); err != nil {
		b.Fatal(err)
	}
	if _, err := oe.Round(bg, tenant); err != nil {
		b.Fatal(err)
	}
	if _, err := oe.WritePack(bg, tenant, true); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var (
		docs int
		cpu  time.Duration
	)
	for b.Loop() {
		b.StopTimer()
		s, err := store.Open(b.TempDir(), store.Options{NodeID: "restored", Durability: store.Sync})
		if err != nil {
			b.Fatal(err)
		}
		e := newEngine(b, s, be, func(c *Config) { c.Tenants = []string{tenant} })
		if _, err := e.Discover(bg); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		before := cpuTime()
		rs, err := e.Restore(bg, tenant)
		cpu += cpuTime() - before
		if err != nil || rs.Applied != n {
			b.Fatalf("Restore = %+v, %v", rs, err)
		}
		docs += rs.Applied
		b.StopTimer()
		e.Close()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(docs)/b.Elapsed().Seconds(), "docs/s")

	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(docs), "ns/doc")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(docs), "cpu-ns/doc")
}
