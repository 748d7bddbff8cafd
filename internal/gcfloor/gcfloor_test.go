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
		{live: 4 * mib, floor: 64 * mib, base: 100, want: 400},  // capped: the goal is five times the live heap
		{live: 16 * mib, floor: 64 * mib, base: 100, want: 325}, // 16 MiB × 4.25 ≥ 64 MiB
		{live: 32 * mib, floor: 64 * mib, base: 100, want: 100}, // twice the live heap reaches the floor
		{live: 300 * mib, floor: 64 * mib, base: 100, want: 100},
		{live: 30 * mib, floor: 64 * mib, base: 100, want: 125},
		{live: 10 * mib, floor: 64 * mib, base: 800, want: 800}, // the operator's base is higher already
		{live: 1, floor: 64 * mib, base: 100, want: 400},
		{live: 0, floor: 64 * mib, base: 100, want: 400},
		{live: 1, floor: 8 * mib, base: 100, want: 200}, // the runtime's 4 MiB minimum, ×2, is the floor
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

// current reads the runtime's GC percent.
func current() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// collectUntil runs collections, whose cleanups run the tuner, until
// cond holds; the cleanups run on another goroutine, so it is polled, for
// at most 10 s.
func collectUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after collections for 10s: %s", what)
		}
		runtime.GC()
		runtime.Gosched()
	}
}

// TestTunerFollowsCollections: the tuner sets the capped percent while the
// live heap is small, the base once a retained allocation brings the live
// heap to the floor, and the capped percent again once it is released:
// each change after collections, so its cleanup re-arms. Stop gives the
// base back.
func TestTunerFollowsCollections(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	const floor = 64 << 20
	runtime.GC()
	tu := Start(floor)
	defer tu.Stop()
	small := MaxPercent(floor, 100)
	collectUntil(t, "the percent of a small live heap", func() bool { return tu.Percent() == small && current() == small })
	for range 2 {
		kept := make([][]byte, 40)
		for i := range kept {
			kept[i] = make([]byte, 1<<20) // 40 MiB live: twice it reaches the floor
		}
		collectUntil(t, "the base with 40 MiB more live", func() bool { return tu.Percent() == 100 && current() == 100 })
		runtime.KeepAlive(kept)
		kept = nil
		collectUntil(t, "the capped percent again once released", func() bool { return tu.Percent() == small && current() == small })
	}
	tu.Stop()
	if got := current(); got != 100 {
		t.Fatalf("percent after Stop %d, want the base 100", got)
	}
}

// TestTunerYieldsToAnotherSetting: a percent set by something else is
// kept: the tuner stops adjusting at its next cycle, and Stop leaves it.
func TestTunerYieldsToAnotherSetting(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	tu := Start(64 << 20)
	debug.SetGCPercent(250)
	collectUntil(t, "the tuner stopped", func() bool {
		tu.mu.Lock()
		defer tu.mu.Unlock()
		return tu.stopped
	})
	tu.Stop()
	if got := current(); got != 250 {
		t.Fatalf("percent %d after the tuner met another setting, want that setting, 250", got)
	}
}

func TestNilAndOff(t *testing.T) {
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	if Start(64<<20) != nil {
		t.Fatal("Start with GOGC=off made a tuner")
	}
	debug.SetGCPercent(100)
	if Start(0) != nil {
		t.Fatal("Start with no floor made a tuner")
	}
	var tu *Tuner
	tu.Stop() // no panic
	if tu.Percent() != -1 {
		t.Fatal("a nil Tuner's percent")
	}
}
