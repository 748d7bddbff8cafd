package logevery

import (
	"testing"
	"time"
)

// TestAllow: one line a period per key, the next one let through counting
// those held back; keys are independent.
func TestAllow(t *testing.T) {
	l := &Limiter{Period: time.Minute}
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		key        string
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{"a", 0, true, 0},
		{"a", time.Second, false, 0},
		{"a", 59 * time.Second, false, 0},
		{"b", 59 * time.Second, true, 0},
		{"a", time.Minute, true, 2},
		{"a", time.Minute + time.Second, false, 0},
		{"a", 3 * time.Minute, true, 1},
	} {
		ok, n := l.Allow(c.key, t0.Add(c.at))
		if ok != c.ok || n != c.suppressed {
			t.Fatalf("Allow(%q, +%v) = %v, %d; want %v, %d", c.key, c.at, ok, n, c.ok, c.suppressed)
		}
	}
}

// TestZeroPeriod: a Limiter without a Period thins to DefaultPeriod,
// where it let every line through.
func TestZeroPeriod(t *testing.T) {
	var l Limiter
	t0 := time.Unix(1000, 0)
	if ok, _ := l.Allow("k", t0); !ok {
		t.Fatal("the first line was held back")
	}
	if ok, _ := l.Allow("k", t0.Add(DefaultPeriod-time.Nanosecond)); ok {
		t.Fatal("a second line within DefaultPeriod was let through")
	}
	if ok, suppressed := l.Allow("k", t0.Add(DefaultPeriod)); !ok || suppressed != 1 {
		t.Fatalf("after DefaultPeriod: %v, %d suppressed; want true, 1", ok, suppressed)
	}
}
