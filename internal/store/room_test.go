package store

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// TestDiskReserve: while the data directory's file system has less free
// space than the reserve, writes are refused with a clear Exhausted error
// and nothing is written, reads go on, and writes are taken again once
// space is freed; admitted writes draw on what was left over the reserve
// between two measures, so a burst stops at the reserve.
func TestDiskReserve(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 30)
	const reserve = 1 << 20
	s := openT(t, "", Options{DiskReserve: reserve, freeSpace: func(string) (int64, error) { return free.Load(), nil },
		roomEvery: time.Hour}) // measured by the test alone
	if _, err := s.Put(bg, "t", "kept", []byte(`{}`), doc.Precondition{}); err != nil {
		t.Fatal(err)
	}

	free.Store(reserve - 1)
	s.room.measure()
	if f, r, ok := s.Room(); !ok || f != reserve-1 || r != reserve {
		t.Fatalf("Room() = %d, %d, %v; want the measure %d and the reserve %d", f, r, ok, reserve-1, reserve)
	}
	_, err := s.Put(bg, "t", "k", []byte(`{}`), doc.Precondition{})
	if !errors.Is(err, ErrDiskLow) || fault.ClassOf(err) != fault.Exhausted || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("Put under the reserve: %v, want ErrDiskLow, Exhausted, saying nothing was written", err)
	}
	if _, err := s.Delete(bg, "t", "kept", doc.Precondition{}); !errors.Is(err, ErrDiskLow) {
		t.Fatalf("Delete under the reserve: %v", err)
	}
	if _, err := s.PutBatch(bg, "t", []Item{{Key: "b", Body: []byte(`{}`)}}); !errors.Is(err, ErrDiskLow) {
		t.Fatalf("PutBatch under the reserve: %v", err)
	}
	if _, err := s.ApplyBatch(bg, "t", []ApplyItem{{Key: "a", Version: doc.Version{Tombstone: true}}}); !errors.Is(err, ErrDiskLow) {
		t.Fatalf("ApplyBatch under the reserve: %v", err)
	}
	if _, err := s.Get(bg, "t", "k"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("a refused write was stored: %v", err)
	}
	if _, err := s.Get(bg, "t", "kept"); err != nil {
		t.Fatalf("a read under the reserve: %v", err)
	}

	// Space freed: writes are taken again, until a burst has used what was
	// over the reserve at the last measure.
	free.Store(reserve + 10*1024)
	s.room.measure()
	body := []byte(`{"v":"` + strings.Repeat("x", 1000) + `"}`)
	n := 0
	for ; n < 100; n++ {
		if _, err := s.Put(bg, "t", "burst", body, doc.Precondition{}); err != nil {
			if !errors.Is(err, ErrDiskLow) {
				t.Fatal(err)
			}
			break
		}
	}
	if n == 0 || n >= 10 {
		t.Fatalf("%d writes of 1 KB taken with 10 KiB over the reserve; want some, fewer than 10", n)
	}
}

// TestDiskReserveOff: a negative reserve keeps none.
func TestDiskReserveOff(t *testing.T) {
	s := openT(t, "", Options{DiskReserve: -1, freeSpace: func(string) (int64, error) { return 0, nil }})
	if _, _, ok := s.Room(); s.room != nil || ok {
		t.Fatal("a reserve is kept")
	}
	if _, err := s.Put(bg, "t", "k", []byte(`{}`), doc.Precondition{}); err != nil {
		t.Fatal(err)
	}
}

// TestRoomToOpen: a store is not opened on a file system without the space
// opening it writes (its log's replay and the next log file), where Pebble
// would retry the failing flush for good inside Open; the error says so,
// and once space is freed the store opens with every write.
func TestRoomToOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(bg, "t", "k", []byte(`{}`), doc.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	full := func(string) (int64, error) { return 1 << 20, nil }
	_, err = Open(dir, Options{freeSpace: full})
	if !errors.Is(err, ErrDiskLow) || fault.ClassOf(err) != fault.Exhausted || !strings.Contains(err.Error(), "free space on it and start again") {
		t.Fatalf("Open with 1 MiB free: %v; want ErrDiskLow, Exhausted, saying to free space", err)
	}
	if s, err = Open(dir, Options{freeSpace: full, DiskReserve: -1}); err != nil {
		t.Fatalf("Open with no reserve kept: %v", err) // checks nothing, as the reserve
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{})
	if _, err := s.Get(bg, "t", "k"); err != nil {
		t.Fatalf("after space was freed: %v", err)
	}
}
