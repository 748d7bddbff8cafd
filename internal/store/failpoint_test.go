package store

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// TestFailpointPoints: the commit failpoints run in order, before-sync
// while the write is not yet in Pebble, after-sync once it is (synced) and
// before its writer is answered, so a kill there loses only
// unacknowledged writes. At neither point does a read return the write:
// at after-sync the syncer has not yet marked it durable, so Get waits
// (waitDurable) until the short context ends.
func TestFailpointPoints(t *testing.T) {
	var (
		answered atomic.Bool
		hits     []string
		s        *Store
	)
	s = openT(t, "", Options{Failpoint: func(name string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_, err := s.Get(ctx, "t", "k")
		switch {
		case name == "store.commit.before-sync" && !errors.Is(err, fault.ErrNotFound):
			t.Errorf("before-sync: Get = %v, want not found", err)
		case name == "store.commit.after-sync" && !errors.Is(err, context.DeadlineExceeded):
			t.Errorf("after-sync: Get = %v, want it to wait for the commit", err)
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

// TestReadsWaitForDurability: Pebble lets readers see a group as soon as
// it is in the memtable, before its fsync completes; no read of the store
// returns a version before the syncer has marked it durable. The commit
// of v2 is held at after-sync (in Pebble, not yet marked): every read
// with a short context ends with that context's error instead of showing
// v2, and a read without a deadline returns v2 once the commit completes.
func TestReadsWaitForDurability(t *testing.T) {
	var hold atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	s := openT(t, "", Options{Failpoint: func(name string) {
		if name == "store.commit.after-sync" && hold.Load() {
			close(reached)
			<-release
		}
	}})
	v1 := mustPut(t, s, "t", "k", `{"v":1}`)
	hold.Store(true)
	put := make(chan error, 1)
	go func() {
		_, err := s.Put(bg, "t", "k", []byte(`{"v":2}`), doc.Precondition{})
		put <- err
	}()
	<-reached
	hold.Store(false)

	short := func() context.Context {
		ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	if rec, err := s.Get(short(), "t", "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get during the commit = seq %d %s, %v; want it to wait", rec.Seq, rec.Body, err)
	}
	for rec, err := range s.List(short(), "t", ListOptions{}) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("List during the commit yielded seq %d %s, %v; want it to wait", rec.Seq, rec.Body, err)
		}
	}
	for c, err := range s.Changes(short(), "t", v1.Seq, 0) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Changes during the commit yielded seq %d, %v; want it to wait", c.Seq, err)
		}
	}

	got := make(chan Record, 1)
	go func() {
		rec, err := s.Get(bg, "t", "k")
		if err != nil {
			t.Errorf("Get: %v", err)
		}
		got <- rec
	}()
	close(release)
	if err := <-put; err != nil {
		t.Fatal(err)
	}
	if rec := <-got; string(rec.Body) != `{"v":2}` {
		t.Fatalf("Get after the commit: %s, want v2", rec.Body)
	}
}
