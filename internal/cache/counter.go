package cache

import (
	"sync/atomic"
	"unsafe"
)

// counterStripes is the number of stripes of a counter, a power of two.
const counterStripes = 128

// counter is an exact event count that many goroutines increment at once:
// 128 stripes of one cache line each, each incremented atomically and summed
// on read. An increment picks its stripe from the address of the calling
// goroutine's stack, which costs no call and no shared write: goroutines
// running at the same time on different cores have different stacks, so
// they share a stripe only when two stacks hash alike (about 1 in 128 for
// two cores). Sharing costs speed only, never counts.
//
// Why not xsync.Counter, which the cache used before: its Add finds its
// stripe through a sync.Pool token (a Get and a Put per increment), and
// the token's stripe is drawn at random among as many stripes as there are
// CPUs: on a two-CPU machine both Ps draw the same stripe half of the time,
// and the pool, emptied at every GC, redraws it. Nor a stripe per P from
// the runtime's procPin (by linkname): the two calls cost more than they
// save. Measured with BenchmarkVersus at load 16-26 (docs/benchmarks.md
// §1, run F): Get at 1.16-1.29x otter's time with xsync.Counter,
// 0.99-1.13x with procPin, 0.85-0.99x with this.
//
// Allocate it with new: an 8 KiB object is page aligned, so every stripe
// sits in its own line and none shares a line with a reader's data.
type counter struct {
	stripes [counterStripes]stripe
}

type stripe struct {
	n atomic.Uint64
	_ [56]byte // one stripe per cache line
}

// inc adds one.
func (c *counter) inc() {
	var local byte
	// Two live stacks are at least 2 KiB apart (the smallest stack); the multiply
	// spreads neighbouring stacks over the stripes. The uintptr is only
	// hashed, never turned back into a pointer, so local does not escape.
	sp := uint64(uintptr(unsafe.Pointer(&local))) >> 11
	c.stripes[(sp*0x9E3779B97F4A7C15)>>57&(counterStripes-1)].n.Add(1)
}

// value sums the stripes. Increments concurrent with it may or may not be
// included.
func (c *counter) value() uint64 {
	var v uint64
	for i := range c.stripes {
		v += c.stripes[i].n.Load()
	}
	return v
}
