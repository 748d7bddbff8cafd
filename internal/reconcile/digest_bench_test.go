package reconcile

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend/mem"
)

// BenchmarkDigestRound times an in-sync round with digests over a tenant
// of CAIRN_BENCH_KEYS documents (default 20,000) in sync with a mem
// backend: it lists nothing, so what it costs is reading the layout and
// the deltas and computing the local digest from the store. Setup (the
// fill, the upload and the round that lays the tenant out) is not timed.
//
//	CAIRN_BENCH_KEYS=200000 go test -run '^$' -bench DigestRound -benchmem ./internal/reconcile/
func BenchmarkDigestRound(b *testing.B) {
	n := 20000
	if s := os.Getenv("CAIRN_BENCH_KEYS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	s := openStore(b, "a")
	be := mem.New("b")
	e := digestEngine(b, s, be)
	fill(b, s, n)
	if _, err := e.Upload(bg, tenant); err != nil {
		b.Fatal(err)
	}
	if st, err := e.Round(bg, tenant); err != nil || st.Listed != n {
		b.Fatalf("the round laying the tenant out: %+v, %v; want %d listed", st, err, n)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		st, err := e.Round(bg, tenant)
		if err != nil || st.Listed != 0 || st.Applied() != 0 {
			b.Fatalf("in-sync round: %+v, %v; want nothing listed or applied", st, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/key")
	// The process's CPU time per key: steadier than the wall time on a
	// shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/key")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
