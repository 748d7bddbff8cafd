package cache_test

import (
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkVersus measures this cache against otter in alternating slices
// of one process, for a shared machine: load swings of several seconds
// (other jobs' builds and tests) land on both implementations, which
// back-to-back sub-benchmarks cannot ensure. Each slice runs 1<<16 ops per
// goroutine, GOMAXPROCS goroutines, all on the same trace as BenchmarkGet;
// the pair order alternates (cairn-otter, otter-cairn). Reported: each
// implementation's ns/op over all its slices, and the median of the
// per-pair ratios cairn/otter. b.N is the number of ops per implementation.
func BenchmarkVersus(b *testing.B) {
	for _, bc := range []struct {
		name       string
		writeEvery int
	}{{"Get", 0}, {"Mixed", 10}} {
		b.Run(bc.name, func(b *testing.B) { versus(b, impls[0], impls[1], bc.writeEvery) })
	}
}

func versus(b *testing.B, x, y impl, writeEvery int) {
	f := benchData(b)
	const perG = 1 << 16
	procs := runtime.GOMAXPROCS(0)
	slice := func(im impl, start int) time.Duration {
		var wg sync.WaitGroup
		t0 := time.Now()
		for g := range procs {
			wg.Go(func() {
				pos := (start + g*(benchTrace/procs)) & (benchTrace - 1)
				for n := 1; n <= perG; n++ {
					i := f.trace[pos]
					pos = (pos + 1) & (benchTrace - 1)
					if writeEvery > 0 && n%writeEvery == 0 {
						im.set(f, i)
					} else if !im.get(f, i) {
						panic(im.name + ": miss on a fully resident key set")
					}
				}
			})
		}
		wg.Wait()
		return time.Since(t0)
	}
	pairs := max(1, b.N/(perG*procs))
	var tx, ty time.Duration
	ratios := make([]float64, 0, pairs)
	b.ResetTimer()
	for p := range pairs {
		start := int(uint32(p) * 0x9E3779B9)
		var dx, dy time.Duration
		if p%2 == 0 {
			dx = slice(x, start)
			dy = slice(y, start)
		} else {
			dy = slice(y, start)
			dx = slice(x, start)
		}
		tx += dx
		ty += dy
		ratios = append(ratios, float64(dx)/float64(dy))
	}
	b.StopTimer()
	slices.Sort(ratios)
	ops := float64(pairs * perG * procs)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(tx)/ops, x.name+"-ns/op")
	b.ReportMetric(float64(ty)/ops, y.name+"-ns/op")
	b.ReportMetric(ratios[len(ratios)/2], "median-ratio")
}
