// Package gcfloor keeps the garbage collector's heap goal from falling
// below a floor while the live heap is small, and leaves GOGC's rule alone
// once the live heap is large enough to reach the floor by itself.
//
// Why: with GOGC=100 the collector runs whenever the heap has grown by as
// much as it held live after the last cycle (at least 4 MiB). A process
// whose live heap is a few MiB (a node that has just started, or holds few
// documents) and whose requests allocate a few KiB each runs the collector
// every few hundred requests, marking that whole live heap each time
// (docs/performance.md, "A floor under the heap goal"). Raising GOGC for
// the whole process would trade it for memory where the heap is large (a
// full document cache, several times over); a floor costs memory only
// while the heap is below it.
//
// A Tuner sets the GC percent after every cycle to
//
//	max(base, 100×floor/live − 100), at most MaxPercent
//
// (live: the heap the cycle marked, /gc/heap/live:bytes; base: the percent
// in force when the Tuner started), so the heap goal, live × (1 +
// percent/100), is the floor, or five times the live heap if that is less,
// and is base's once live × (1 + base/100) reaches the floor. A memory
// limit (debug.SetMemoryLimit) still bounds the heap whatever the percent:
// the caller keeps the floor well under it.
//
// Use: Start(floor) once per process; Stop gives the percent back.
//
// Concurrency: the percent is process-wide, so one Tuner runs per process.
// Its adjustments run on the runtime's cleanup goroutine after each
// collection (runtime.AddCleanup on an object made for the cycle); a mutex
// orders them with Percent and Stop.
//
// Sharp edges: the percent set after a cycle applies to the next one, so
// when the live heap jumps (a cache filled at once) the next goal is up to
// five times the new live heap, not two, until the cycle after; MaxPercent
// bounds that. If anything else sets the percent (debug.SetGCPercent), the
// Tuner notices at its next adjustment and stops, leaving that setting.
//
// Why not bytedance/gopkg's gctuner, the library for this: it reads the
// heap with runtime.ReadMemStats, which stops the world, after every
// cycle, counts HeapInuse (spans in use, not the heap the cycle found
// live), and also lowers the percent below GOGC's as the heap nears its
// threshold, which a process with a large heap would pay for in collector
// CPU. runtime/metrics gives the live heap and the percent without
// stopping anything.
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

// capPercent bounds the percent a Tuner sets: the goal after a jump of the
// live heap is at most 1 + capPercent/100 times it (see the package's
// sharp edges).
const capPercent = 400

// Tuner adjusts the GC percent after each collection; see the package
// comment. Start makes one; Stop ends it.
type Tuner struct {
	floor int64
	base  int

	mu      sync.Mutex // guards the fields below
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
// after every collection; the percent in force now (GOGC's) is the base
// it keeps once the live heap reaches the floor by itself. A floor of zero
// or less, or a collector turned off (GOGC=off), starts nothing: the nil
// Tuner returned is safe to use.
func Start(floor int64) *Tuner {
	t := &Tuner{floor: floor, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/gogc:percent"}}}
	_, t.base = t.read()
	if floor <= 0 || t.base < 0 {
		return nil
	}
	t.percent = t.base
	t.adjust()
	t.arm()
	return t
}

// Stop ends the adjustments and sets the percent back to the base, unless
// something else has set it since.
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
	if _, current := t.read(); current == t.percent {
		debug.SetGCPercent(t.base)
	}
}

// Percent is the GC percent the tuner set last (the base for a nil Tuner:
// -1, not known).
func (t *Tuner) Percent() int {
	if t == nil {
		return -1
	}
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

// read returns the live heap the last cycle marked and the percent in
// force.
func (t *Tuner) read() (live int64, percent int) {
	metrics.Read(t.sample)
	if s := t.sample[0]; s.Value.Kind() == metrics.KindUint64 {
		live = int64(s.Value.Uint64())
	}
	percent = -1
	if s := t.sample[1]; s.Value.Kind() == metrics.KindUint64 {
		percent = int(s.Value.Uint64())
	}
	return live, percent
}

// adjust sets the percent for the live heap the last cycle marked; false
// once the tuner is stopped, or has stopped itself because something else
// set the percent.
func (t *Tuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	live, current := t.read()
	if current != t.percent {
		t.stopped = true // someone else's setting: theirs to keep
		return false
	}
	if p := PercentFor(live, t.floor, t.base); p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
	return true
}

// PercentFor is the GC percent that makes the heap goal of a live heap at
// least floor: base when live × (1 + base/100) reaches it, else the
// smallest percent that does, rounded up to a multiple of 25 (so that a
// live heap that changes a little from cycle to cycle does not change the
// setting each time), and at most MaxPercent(floor, base). A live heap of
// 0 (no collection yet) gets MaxPercent too.
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
// percent) is the floor, since a higher one would let the heap grow past
// the floor while the live heap is tiny, and at most capPercent. It is
// never below base.
func MaxPercent(floor int64, base int) int {
	return int(max(min(floor*100/minHeap, capPercent), int64(base)))
}
