package store

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// TestFailpointPoints: the commit failpoints run in order, before-sync
// while the write is not yet readable, after-sync once it is and before
// its writer is answered, so a kill there loses only unacknowledged
// writes.
func TestFailpointPoints(t *testing.T) {
	var (
		answered atomic.Bool
		hits     []string
		s        *Store
	)
	s = openT(t, "", Options{Failpoint: func(name string) {
		_, err := s.Get(context.Background(), "t", "k")
		visible := err == nil
		switch {
		case name == "store.commit.before-sync" && visible:
			t.Errorf("before-sync: the write is already visible")
		case name == "store.commit.after-sync" && (!visible || fault.ClassOf(err) != fault.Unknown):
			t.Errorf("after-sync: the write is not visible: %v", err)
		case answered.Load():
			t.Errorf("%s: the writer was already answered", name)
		}
		hits = append(hits, name)
	}})
	if _, err := s.Put(context.Background(), "t", "k", []byte(`{}`), doc.Precondition{}); err != nil {
		t.Fatal(err)
	}
	answered.Store(true)
	if len(hits) != 2 || hits[0] != "store.commit.before-sync" || hits[1] != "store.commit.after-sync" {
		t.Fatalf("hits %v", hits)
	}
}
