package doc

import (
	"fmt"
	"sync"
	"time"
)

// Timestamp is a hybrid logical clock reading: milliseconds since the Unix
// epoch in the high 48 bits and a logical counter in the low 16. Timestamps
// compare as integers.
type Timestamp uint64

const logicalBits = 16

// MakeTimestamp builds a Timestamp from its parts. A wall time before the
// Unix epoch (a badly set clock) counts as the epoch.
func MakeTimestamp(wallMillis int64, logical uint16) Timestamp {
	wallMillis = max(wallMillis, 0)
	return Timestamp(uint64(wallMillis)<<logicalBits | uint64(logical))
}

// WallMillis is the physical part.
func (t Timestamp) WallMillis() int64 { return int64(t >> logicalBits) }

// Logical is the logical part.
func (t Timestamp) Logical() uint16 { return uint16(t) }

// Time is the physical part as a time.Time.
func (t Timestamp) Time() time.Time { return time.UnixMilli(t.WallMillis()) }

func (t Timestamp) String() string {
	return fmt.Sprintf("%s+%d", t.Time().UTC().Format("2006-01-02T15:04:05.000Z"), t.Logical())
}

// Clock is a hybrid logical clock. Its readings strictly increase, even when
// the wall clock steps back: the physical part then stays at the highest wall
// time seen and the logical part counts. When the logical part would
// overflow, the physical part advances by one millisecond, so the clock runs
// at most a little ahead of the wall during a long step back.
//
// A Clock is safe for concurrent use.
type Clock struct {
	wall func() time.Time // the physical clock, injected for tests

	mu   sync.Mutex // guards last and the watch fields below
	last Timestamp

	// Set by Watch; see there. prev and prevElapsed are the readings of the
	// previous Now (or of Watch); prev keeps its monotonic reading, which
	// measures the time elapsed when elapsed is nil.
	watch       func(Jump)
	threshold   time.Duration
	elapsed     func() time.Duration
	prev        time.Time
	prevElapsed time.Duration
}

// Jump is a step of the wall clock that a watched Clock noticed between two
// readings: the wall moved by Step more (or, negative, less) than the time
// that passed.
type Jump struct {
	Step  time.Duration // positive: the wall jumped forward; negative: back
	Wall  time.Time     // the wall reading after the step
	Ahead time.Duration // how far the clock's readings are ahead of Wall (0 if not)
}

// Direction is "forward" or "backward", the way the step went.
func (j Jump) Direction() string {
	if j.Step < 0 {
		return "backward"
	}
	return "forward"
}

// NewClock returns a clock reading wall (time.Now if nil).
func NewClock(wall func() time.Time) *Clock {
	if wall == nil {
		wall = time.Now
	}
	return &Clock{wall: wall}
}

// Now returns a timestamp greater than every one this clock returned or
// observed before.
func (c *Clock) Now() Timestamp {
	w := c.wall()
	pt := MakeTimestamp(w.UnixMilli(), 0)
	c.mu.Lock()
	c.last = next(c.last, pt)
	ts := c.last
	j, jumped := c.checkLocked(w, ts)
	watch := c.watch
	c.mu.Unlock()
	if jumped {
		watch(j)
	}
	return ts
}

// Watch makes the clock report, to f, every step of the wall clock larger
// than threshold in either direction. The clock itself stays correct
// through any step (its readings only increase); what a step changes is
// what its readings mean. After a step back the readings run ahead of the
// wall, so this node's writes win last-writer-wins ties they would lose by
// the wall; after a far step forward they carry the wrong date, and keep
// running ahead once the wall is set right. An operator needs to hear of
// both.
//
// A step is the wall's movement between two readings of Now minus the time
// that elapsed (nil elapsed: the monotonic readings time.Now carries, so a
// watched clock's wall must be time.Now; tests inject both), so a step
// forward is told apart from a long pause between writes. The first
// reading is compared with one Watch takes. f runs on the goroutine that
// called Now, after the clock's lock is released; it must be quick. Call
// Watch before the clock is used.
func (c *Clock) Watch(threshold time.Duration, elapsed func() time.Duration, f func(Jump)) {
	w := c.wall()
	var el time.Duration
	if elapsed != nil {
		el = elapsed()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watch, c.threshold, c.elapsed = f, threshold, elapsed
	c.prev, c.prevElapsed = w, el
}

// checkLocked compares the wall reading w with the previous one; ts is the
// reading Now returns.
func (c *Clock) checkLocked(w time.Time, ts Timestamp) (Jump, bool) {
	if c.watch == nil {
		return Jump{}, false
	}
	// Round(0) compares wall readings; w.Sub(c.prev) uses the monotonic
	// ones when both carry them, so no second clock read is needed.
	step := w.Round(0).Sub(c.prev.Round(0))
	if c.elapsed != nil {
		el := c.elapsed()
		step -= el - c.prevElapsed
		c.prevElapsed = el
	} else {
		step -= w.Sub(c.prev)
	}
	c.prev = w
	w = w.Round(0)
	if step <= c.threshold && step >= -c.threshold {
		return Jump{}, false
	}
	return Jump{Step: step, Wall: w, Ahead: max(0, ts.Time().Sub(w))}, true
}

// Ahead is how far the clock's latest reading is ahead of the wall clock
// now: 0 normally, positive after the wall stepped back or a version from a
// node whose clock runs ahead was observed.
func (c *Clock) Ahead() time.Duration {
	w := c.wall()
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	return max(0, last.Time().Sub(w))
}

// Observe folds in a timestamp received from elsewhere (a remote version),
// so the next reading orders after it.
func (c *Clock) Observe(remote Timestamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if remote > c.last {
		c.last = remote
	}
}

// next returns the smallest timestamp after last that is not behind pt.
func next(last, pt Timestamp) Timestamp {
	if pt > last {
		return pt
	}
	return last + 1 // a logical overflow carries into the physical part
}
