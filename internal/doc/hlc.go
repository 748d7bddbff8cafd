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

	mu   sync.Mutex // guards last
	last Timestamp
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
	pt := MakeTimestamp(c.wall().UnixMilli(), 0)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = next(c.last, pt)
	return c.last
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
