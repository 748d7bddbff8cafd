package streambuf_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/streambuf"
)

func TestInternIsStableAndBounded(t *testing.T) {
	b := streambuf.New(streambuf.Config{MaxInterned: 2, MaxInternLen: 8})
	s1, ok := b.Intern([]byte("NASDAQ"))
	if !ok || s1 != "NASDAQ" {
		t.Fatalf("Intern(NASDAQ) = %q, %v; want NASDAQ, true", s1, ok)
	}
	if again, _ := b.Intern([]byte("NASDAQ")); again != s1 || len(b.Persistent()) != 1 {
		t.Fatalf("second Intern added an entry: %q", b.Persistent())
	}
	if _, ok := b.Intern([]byte("much-too-long")); ok {
		t.Fatalf("Intern of a string over MaxInternLen succeeded")
	}
	if _, ok := b.Intern([]byte("NYSE")); !ok {
		t.Fatalf("Intern(NYSE) under the bound failed")
	}
	if _, ok := b.Intern([]byte("LSE")); ok {
		t.Fatalf("Intern past MaxInterned succeeded")
	}
	got := strings.Join(b.Persistent(), ",")
	if want := "NASDAQ,NYSE"; got != want {
		t.Fatalf("Persistent() = %q, want %q", got, want)
	}
	b.Reset()
	if got := strings.Join(b.Persistent(), ","); got != "NASDAQ,NYSE" || s1 != "NASDAQ" {
		t.Fatalf("after Reset: Persistent() = %q, s1 = %q; long-lived data changed", got, s1)
	}
}

func TestInternHitDoesNotAllocate(t *testing.T) {
	b := streambuf.New(streambuf.Config{})
	key := []byte("consolidated")
	b.Intern(key)
	if n := testing.AllocsPerRun(100, func() { b.Intern(key) }); n != 0 {
		t.Fatalf("Intern hit allocates %v times, want 0", n)
	}
}

func TestPersistentIsCapped(t *testing.T) {
	b := streambuf.New(streambuf.Config{})
	b.Intern([]byte("a"))
	p := b.Persistent()
	_ = append(p, "clobber")
	b.Intern([]byte("b"))
	if got := b.Persistent(); got[1] != "b" {
		t.Fatalf("append to Persistent() changed the buffer: %q", got)
	}
}

func TestShortRegionAndRecent(t *testing.T) {
	b := streambuf.New(streambuf.Config{})
	input := []byte("zero-copy input")
	b.Add([]byte("one"))
	b.Add([]byte("two"))
	r := b.Ref(input[:4])
	if &r.Bytes()[0] != &input[0] {
		t.Fatalf("Ref copied its input")
	}
	tests := []struct {
		n    int
		want string
	}{{0, ""}, {1, "zero"}, {2, "two,zero"}, {3, "one,two,zero"}, {10, "one,two,zero"}, {-1, ""}}
	for _, tc := range tests {
		var parts []string
		for _, v := range b.Recent(tc.n) {
			parts = append(parts, v.String())
		}
		if got := strings.Join(parts, ","); got != tc.want {
			t.Errorf("Recent(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	b.Reset()
	if b.Len() != 0 || len(b.Recent(5)) != 0 || b.ArenaBytes() != 0 {
		t.Fatalf("Reset left %d items, %d arena bytes", b.Len(), b.ArenaBytes())
	}
}

func TestGrowCommit(t *testing.T) {
	b := streambuf.New(streambuf.Config{})
	first := b.Commit(append(b.Grow(5), "hello"...))
	big := make([]byte, 10000) // forces a new arena array
	second := b.Commit(append(b.Grow(len(big)), big...))
	if !first.Equal("hello") || second.Len() != len(big) {
		t.Fatalf("views changed after arena growth: %q, %d", first.Bytes(), second.Len())
	}
	defer func() {
		if recover() == nil {
			t.Fatalf("Commit of a foreign slice did not panic")
		}
	}()
	b.Commit([]byte("foreign"))
}

func TestPermanentView(t *testing.T) {
	v := streambuf.Permanent("NYSE")
	if !v.Equal("NYSE") || !v.EqualBytes([]byte("NYSE")) || v.String() != "NYSE" {
		t.Fatalf("Permanent view = %q", v.Bytes())
	}
}

func ExampleBuffer() {
	b := streambuf.New(streambuf.Config{})
	exchange, _ := b.Intern([]byte("NASDAQ")) // long-lived: keep it anywhere
	for _, batch := range [][]string{{"AAPL", "MSFT"}, {"GOOG"}} {
		for _, sym := range batch {
			b.Add([]byte(sym)) // short-lived: valid until Reset
		}
		for _, v := range b.Recent(1) {
			fmt.Println(exchange, v.String())
		}
		b.Reset()
	}
	fmt.Println(b.Persistent())
	// Output:
	// NASDAQ MSFT
	// NASDAQ GOOG
	// [NASDAQ]
}
