package doc

import (
	"testing"
	"time"
)

// TestClockWatchReportsJumps: a watched clock reports a wall step larger
// than the threshold, back or forward, and nothing for small steps or for a
// long pause between readings (the wall and the elapsed time move alike).
func TestClockWatchReportsJumps(t *testing.T) {
	wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var elapsed time.Duration
	c := NewClock(func() time.Time { return wall })
	var jumps []Jump
	c.Watch(time.Second, func() time.Duration { return elapsed }, func(j Jump) { jumps = append(jumps, j) })
	tick := func(wallBy, elapsedBy time.Duration) {
		wall, elapsed = wall.Add(wallBy), elapsed+elapsedBy
		c.Now()
	}
	tick(-2*time.Second, 0)                 // before the first reading: compared with Watch's
	tick(time.Hour, time.Hour)              // a pause: no jump
	tick(500*time.Millisecond, 0)           // within the threshold: an NTP step
	tick(-time.Minute, time.Millisecond)    // back
	tick(48*time.Hour, 10*time.Millisecond) // far forward
	tick(-48*time.Hour+time.Minute, 0)      // set right again
	if len(jumps) != 4 {
		t.Fatalf("jumps %+v, want 4", jumps)
	}
	if jumps[0].Step != -2*time.Second {
		t.Errorf("the step before the first reading: %v, want -2s", jumps[0].Step)
	}
	jumps = jumps[1:]
	for i, want := range []time.Duration{-time.Minute - time.Millisecond, 48*time.Hour - 10*time.Millisecond, -48*time.Hour + time.Minute} {
		if jumps[i].Step != want {
			t.Errorf("jump %d: step %v, want %v", i, jumps[i].Step, want)
		}
	}
	// After the step back the readings stay at the highest wall seen, ahead
	// of the wall by the step; after the far step forward was undone they
	// are ~48h ahead.
	if a := jumps[0].Ahead; a < 59*time.Second || a > time.Minute {
		t.Errorf("ahead after a 1m step back: %v", a)
	}
	if a := c.Ahead(); a < 47*time.Hour {
		t.Errorf("ahead after the far step forward was undone: %v, want ~48h", a)
	}
	if jumps[1].Ahead != 0 {
		t.Errorf("ahead right after a step forward: %v, want 0", jumps[1].Ahead)
	}
}

// TestClockAhead: Ahead is how far the latest reading is ahead of the wall
// now, 0 while the wall is not behind it.
func TestClockAhead(t *testing.T) {
	wall := time.UnixMilli(10_000)
	c := NewClock(func() time.Time { return wall })
	c.Now()
	if a := c.Ahead(); a != 0 {
		t.Fatalf("ahead %v, want 0", a)
	}
	wall = wall.Add(-5 * time.Second)
	if a := c.Ahead(); a != 5*time.Second {
		t.Fatalf("ahead after a 5s step back %v, want 5s", a)
	}
}
