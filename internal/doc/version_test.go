package doc

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func vec(pairs ...uint64) Vector {
	var v Vector
	for i := 0; i+1 < len(pairs); i += 2 {
		v = append(v, Dot{pairs[i], pairs[i+1]})
	}
	return v
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b Vector
		want Ordering
	}{
		{nil, nil, Equal},
		{vec(1, 1), vec(1, 1), Equal},
		{nil, vec(1, 1), Before},
		{vec(1, 1), nil, After},
		{vec(1, 1), vec(1, 2), Before},
		{vec(1, 2), vec(1, 1), After},
		{vec(1, 1), vec(1, 1, 2, 1), Before},
		{vec(1, 1, 2, 1), vec(2, 1), After},
		{vec(1, 2), vec(2, 1), Concurrent},
		{vec(1, 2, 2, 1), vec(1, 1, 2, 2), Concurrent},
		{vec(1, 1, 3, 1), vec(1, 1, 2, 1), Concurrent},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		// The relation is antisymmetric.
		inv := map[Ordering]Ordering{Equal: Equal, Before: After, After: Before, Concurrent: Concurrent}
		if got := Compare(tt.b, tt.a); got != inv[tt.want] {
			t.Errorf("Compare(%v, %v) = %v, want %v", tt.b, tt.a, got, inv[tt.want])
		}
	}
}

func TestVectorOps(t *testing.T) {
	a := vec(1, 2, 5, 1)
	b := a.Increment(3)
	if want := vec(1, 2, 3, 1, 5, 1); !equalVec(b, want) {
		t.Fatalf("Increment(3) = %v, want %v", b, want)
	}
	if want := vec(1, 2, 5, 1); !equalVec(a, want) {
		t.Fatalf("Increment modified its receiver: %v", a)
	}
	if got := b.Increment(1).Get(1); got != 3 {
		t.Fatalf("Get after Increment = %d, want 3", got)
	}
	m := vec(1, 3, 5, 1).Merge(vec(1, 2, 4, 7, 9, 1))
	if want := vec(1, 3, 4, 7, 5, 1, 9, 1); !equalVec(m, want) {
		t.Fatalf("Merge = %v, want %v", m, want)
	}
	if Compare(m, vec(1, 3, 5, 1)) != After || Compare(m, vec(1, 2, 4, 7, 9, 1)) != After {
		t.Fatalf("Merge result does not dominate its inputs")
	}
}

func equalVec(a, b Vector) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestVersionRoundTrip(t *testing.T) {
	first := Derive(nil, 0xdeadbeefcafe, MakeTimestamp(1_700_000_000_000, 3), []byte(`{"a":1}`), false)
	second := Derive(&first, 7, MakeTimestamp(1_700_000_000_001, 0), []byte(`{"a":2}`), false)
	gone := Derive(&second, 0xdeadbeefcafe, MakeTimestamp(1_700_000_000_002, 0), []byte(`ignored`), true)
	for _, v := range []Version{{}, first, second, gone} {
		enc, _ := v.MarshalBinary()
		var got Version
		if err := got.UnmarshalBinary(enc); err != nil {
			t.Fatalf("UnmarshalBinary(%x): %v", enc, err)
		}
		if !bytes.Equal(got.AppendBinary(nil), enc) || got.ID() != v.ID() {
			t.Fatalf("round trip changed the version: %+v → %+v", v, got)
		}
		// Trailing data is refused by UnmarshalBinary but not DecodeVersion.
		if err := got.UnmarshalBinary(append(enc, 0)); !errors.Is(err, ErrBadVersion) {
			t.Fatalf("trailing byte accepted: %v", err)
		}
		if _, n, err := DecodeVersion(append(enc, 'x')); err != nil || n != len(enc) {
			t.Fatalf("DecodeVersion = %d, %v; want %d, nil", n, err, len(enc))
		}
	}
	if second.Parent != first.ID() || gone.Parent != second.ID() {
		t.Fatalf("Derive did not link parents")
	}
	if Compare(second.Vector, first.Vector) != After || !gone.Tombstone || gone.Hash != HashBody(nil) {
		t.Fatalf("Derive: bad vector or tombstone: %+v", gone)
	}
	if n := len(second.AppendBinary(nil)); n > 80 {
		t.Errorf("encoding of a two-writer version is %d bytes; expected compact (< 80)", n)
	}
}

func TestVersionDecodeErrors(t *testing.T) {
	good := Derive(nil, 9, 1, []byte("x"), false)
	enc := good.AppendBinary(nil)
	for i := range enc {
		if _, _, err := DecodeVersion(enc[:i]); !errors.Is(err, ErrBadVersion) {
			t.Errorf("truncated at %d: err = %v, want ErrBadVersion", i, err)
		}
	}
	unsorted := Version{Vector: vec(5, 1, 2, 1)}
	if _, _, err := DecodeVersion(unsorted.AppendBinary(nil)); !errors.Is(err, ErrBadVersion) {
		t.Errorf("unsorted vector accepted: %v", err)
	}
	zero := Version{Vector: vec(5, 0)}
	if _, _, err := DecodeVersion(zero.AppendBinary(nil)); !errors.Is(err, ErrBadVersion) {
		t.Errorf("zero counter accepted: %v", err)
	}
	if _, _, err := DecodeVersion([]byte{2, 0}); !errors.Is(err, ErrBadVersion) {
		t.Errorf("unknown format accepted: %v", err)
	}
}

func TestWinsIsTotal(t *testing.T) {
	a := Version{HLC: 5, Writer: 1, Hash: HashBody([]byte("a"))}
	b := Version{HLC: 5, Writer: 1, Hash: HashBody([]byte("b"))}
	c := Version{HLC: 6, Writer: 0}
	d := Version{HLC: 5, Writer: 2}
	for _, p := range [][2]Version{{a, b}, {a, c}, {b, d}, {c, d}} {
		if p[0].Wins(&p[1]) == p[1].Wins(&p[0]) {
			t.Errorf("Wins is not antisymmetric for %+v, %+v", p[0], p[1])
		}
	}
	if !c.Wins(&d) || !d.Wins(&a) {
		t.Errorf("Wins order: want HLC first, then writer")
	}
}

func FuzzVersionDecode(f *testing.F) {
	v := Derive(nil, 1, 2, []byte("{}"), false)
	w := Derive(&v, 3, 4, nil, true)
	f.Add(v.AppendBinary(nil))
	f.Add(w.AppendBinary(nil))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, n, err := DecodeVersion(b)
		if err != nil {
			if !errors.Is(err, ErrBadVersion) {
				t.Fatalf("error %v does not wrap ErrBadVersion", err)
			}
			return
		}
		// Anything accepted re-encodes to exactly the bytes it came from.
		if enc := got.AppendBinary(nil); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", b[:n], enc)
		}
	})
}

func TestClockMonotonicWhenWallStepsBack(t *testing.T) {
	wall := time.UnixMilli(1_700_000_000_000)
	c := NewClock(func() time.Time { return wall })
	var last Timestamp
	steps := []time.Duration{0, 0, time.Millisecond, -time.Hour, 0, 2 * time.Hour, -time.Millisecond}
	for i, d := range steps {
		wall = wall.Add(d)
		ts := c.Now()
		if ts <= last {
			t.Fatalf("step %d (wall %+v): Now() = %v, not after %v", i, d, ts, last)
		}
		last = ts
	}
	if got, want := last.WallMillis(), wall.Add(time.Millisecond).UnixMilli(); got != want {
		t.Fatalf("after the wall caught up, physical = %d, want %d", got, want)
	}
}

func TestClockLogicalOverflowCarries(t *testing.T) {
	wall := time.UnixMilli(42)
	c := NewClock(func() time.Time { return wall })
	var last Timestamp
	for i := 0; i < 70_000; i++ {
		ts := c.Now()
		if ts <= last {
			t.Fatalf("reading %d not increasing: %v after %v", i, ts, last)
		}
		last = ts
	}
	if last.WallMillis() != 43 {
		t.Fatalf("logical overflow should carry into the next millisecond, got %v", last)
	}
}

func TestClockBeforeEpoch(t *testing.T) {
	c := NewClock(func() time.Time { return time.UnixMilli(-5) })
	if a, b := c.Now(), c.Now(); a != 1 || b != 2 {
		t.Fatalf("a clock before the epoch should count from the epoch, got %v, %v", a, b)
	}
}

func TestClockObserve(t *testing.T) {
	c := NewClock(func() time.Time { return time.UnixMilli(10) })
	remote := MakeTimestamp(99, 7)
	c.Observe(remote)
	if got := c.Now(); got <= remote {
		t.Fatalf("Now() = %v after observing %v", got, remote)
	}
}
