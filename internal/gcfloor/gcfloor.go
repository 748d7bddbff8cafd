// Package gcfloor keeps the garbage collector's heap goal from falling
// below a floor while the live heap is small, and leaves GOGC's rule alone
// once the live heap is large enough to reach the floor by itself.
//
// Why: with GOGC=100 the collector runs whenever the heap has grown by as
// much as it held live after the last cycle (at least 4 MiB). A node that
// has just started, or holds few documents, has a live heap of a few MiB
// made mostly of what it set up at start (its code's globals, Pebble's and
// the telemetry's structures), and a request allocates a few KiB, most of
// it in net/http: the collector then runs every few hundred requests and
// marks that whole live heap each time. On a cached GET that was about 4 µs
// of node CPU per request, more than the rest of the server's own work
// (docs/performance.md, "A floor under the heap goal"). Raising GOGC for
// the whole process would trade it for memory where the heap is large
// (a full document cache, two or more times over); a floor costs at most
// the floor, and only while the heap is below it.
//
// A Tuner sets the GC percent after every cycle to
//
//	max(base, 100×floor/live − 100), at most MaxPercent
//
// (live: the heap the cycle marked, /gc/heap/live:bytes), so the heap
// goal, live × (1 + percent/100), is at least the floor, and is base's
// once live × (1 + base/100) reaches it. A memory limit
// (debug.SetMemoryLimit) still bounds the heap whatever the percent: the
// caller keeps the floor well under it.
//
// Why not bytedance/gopkg's gctuner, the library for this: it reads the
// heap with runtime.ReadMemStats, which stops the world, after every
// cycle, counts HeapInuse (spans in use, not the heap the cycle found
// live), is one global per process, and also lowers the percent below
// GOGC's as the heap nears its threshold, which a node with a full cache
// would pay for in collector CPU. runtime/metrics gives the live heap
// without stopping anything.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// minHeap is the Go runtime's smallest heap goal at GOGC=100 (4 MiB); it
// scales with the percent, so a percent over 100×floor/minHeap would put
// the goal above the floor whatever the live heap.
const minHeap = 4 << 20

// Tuner adjusts the GC percent after each collection; see the package
// comment. Start makes one; Stop ends it.
type Tuner struct {
	floor int64
	base  int

	mu      sync.Mutex
	stopped bool
	percent int // the percent last set
	sample  []metrics.Sample
}

// sentinel is an object allocated for one cycle: when a collection finds it
// unreachable, its cleanup runs the tuner and allocates the next one. It
// holds a pointer so that the tiny allocator, which packs pointer-free
// objects under 16 bytes together, does not keep it alive with others.
type sentinel struct{ _ *int }

// Start sets the percent for the current live heap and keeps it adjusted
// after every collection, with base the percent to keep once the live heap
// reaches the floor by itself (GOGC's 100 unless the caller says
// otherwise). A floor of zero or less, or a negative base (GOGC=off),
// starts nothing: Stop on the returned nil Tuner does nothing.
func Start(floor int64, base int) *Tuner {
	if floor <= 0 || base < 0 {
		return nil
	}
	t := &Tuner{floor: floor, base: base, percent: -1,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.adjust()
	t.arm()
	return t
}

// Stop ends the adjustments and sets the percent back to base.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	debug.SetGCPercent(t.base)
}

// Percent is the GC percent the tuner set last.
func (t *Tuner) Percent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.percent
}

func (t *Tuner) arm() {
	s := new(sentinel)
	runtime.AddCleanup(s, func(t *Tuner) {
		if t.adjust() {
			t.arm()
		}
	}, t)
}

// adjust sets the percent for the live heap the last cycle marked; false
// once the tuner is stopped.
func (t *Tuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	var live int64
	if s := t.sample[0]; s.Value.Kind() == metrics.KindUint64 {
		live = int64(s.Value.Uint64())
	}
	p := PercentFor(live, t.floor, t.base)
	if p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
	return true
}

// PercentFor is the GC percent that makes the heap goal of a live heap at
// least floor: base when live × (1 + base/100) reaches it, else the
// smallest percent that does, rounded up to a multiple of 25 (so that a
// live heap that changes a little from cycle to cycle does not change the
// setting each time), and at most MaxPercent(floor). A live heap of 0 (no
// collection yet) gets MaxPercent(floor) too, whose goal is the floor.
func PercentFor(live, floor int64, base int) int {
	if live > 0 && live+live*int64(base)/100 >= floor {
		return base
	}
	top := MaxPercent(floor, base)
	if live <= 0 {
		return top
	}
	p := (floor-live)*100/live + 1
	p = (p + 24) / 25 * 25
	return int(min(max(p, int64(base)), int64(top)))
}

// MaxPercent is the largest percent the tuner sets for floor: the one at
// which the runtime's smallest heap goal (4 MiB at 100, scaled by the
// percent) is the floor. A higher percent would let the heap grow past the
// floor while the live heap is tiny. It is never below base.
func MaxPercent(floor int64, base int) int {
	return int(max(floor*100/minHeap, int64(base)))
}
