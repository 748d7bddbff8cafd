package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor int64
		base, want  int
	}{
		{live: 4 * mib, floor: 64 * mib, base: 100, want: 1525}, // 4 MiB × 16.25 ≥ 64 MiB
		{live: 32 * mib, floor: 64 * mib, base: 100, want: 100}, // twice the live heap reaches the floor
		{live: 300 * mib, floor: 64 * mib, base: 100, want: 100},
		{live: 30 * mib, floor: 64 * mib, base: 100, want: 125},
		{live: 10 * mib, floor: 64 * mib, base: 800, want: 800}, // the operator's base is higher already
		{live: 1, floor: 64 * mib, base: 100, want: 1600},       // the runtime's 4 MiB minimum, ×16, is the floor
		{live: 0, floor: 64 * mib, base: 100, want: 1600},
		{live: 1, floor: 2 * mib, base: 100, want: 100},
	} {
		got := PercentFor(c.live, c.floor, c.base)
		if got != c.want {
			t.Errorf("PercentFor(%d, %d, %d) = %d, want %d", c.live, c.floor, c.base, got, c.want)
		}
		if got < MaxPercent(c.floor, c.base) && c.live > 0 && c.live+c.live*int64(got)/100 < c.floor {
			t.Errorf("PercentFor(%d, %d, %d) = %d: heap goal %d under the floor", c.live, c.floor, c.base, got, c.live+c.live*int64(got)/100)
		}
	}
}

// TestTunerFollowsCollections checks that the tuner sets the percent at
// start, sets it again after collections, and gives the base back at Stop.
func TestTunerFollowsCollections(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	const floor = 1 << 40 // no test heap reaches it: the percent is MaxPercent
	tu := Start(floor, 100)
	if got, want := tu.Percent(), MaxPercent(floor, 100); got != want {
		t.Fatalf("percent at start %d, want %d", got, want)
	}
	if got, want := current(), MaxPercent(floor, 100); got != want {
		t.Fatalf("runtime's percent %d, want %d", got, want)
	}
	// A tuner whose floor the heap already reaches keeps the base, after
	// the cycles that run its cleanups.
	tu.Stop()
	if got := current(); got != 100 {
		t.Fatalf("percent after Stop %d, want the base 100", got)
	}
	tu2 := Start(1, 100)
	defer tu2.Stop()
	// Make the tuner believe it set another percent: after the next
	// collection its cleanup sets the base again.
	tu2.mu.Lock()
	tu2.percent = 1000
	tu2.mu.Unlock()
	debug.SetGCPercent(1000)
	deadline := time.Now().Add(10 * time.Second)
	for tu2.Percent() != 100 {
		if time.Now().After(deadline) {
			t.Fatal("no cleanup set the percent back to the base after collections")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := current(); got != 100 {
		t.Fatalf("runtime's percent %d after the cleanup, want 100", got)
	}
}

// current reads the runtime's GC percent.
func current() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestNilAndOff(t *testing.T) {
	if Start(0, 100) != nil || Start(64<<20, -1) != nil {
		t.Fatal("Start with no floor or GOGC=off made a tuner")
	}
	var tu *Tuner
	tu.Stop() // no panic
}
