package store

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// TestCollect: Collect removes exactly the named tombstone and the key's
// sync states with the named backends, atomically, durably, without a
// change-log entry or a Watcher call; it refuses anything but that
// tombstone; and a write to the key afterwards is never older than the
// collected tombstone.
func TestCollect(t *testing.T) {
	dir := t.TempDir()
	w := &recordingWatcher{seen: map[uint64]Record{}}
	s := openT(t, dir, Options{Watcher: w})
	live := mustPut(t, s, "t", "k", `{"a":1}`)
	mustPut(t, s, "t", "other", `{}`)
	wantClass(t, "Collect of a live version", s.Collect(bg, "t", "k", live.Version.ID(), nil), fault.PreconditionFailed)
	tomb, err := s.Delete(bg, "t", "k", doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"b1", "b2", "b3"} {
		if err := s.PutSyncState(b, "t", "k", SyncState{Base: tomb.Version, RemoteETag: "e"}); err != nil {
			t.Fatal(err)
		}
	}
	wantClass(t, "Collect of another tombstone", s.Collect(bg, "t", "k", live.Version.ID(), nil), fault.PreconditionFailed)
	wantClass(t, "Collect with a bad backend", s.Collect(bg, "t", "k", tomb.Version.ID(), []string{""}), fault.Invalid)
	if _, err := s.Get(bg, "t", "k"); err != nil {
		t.Fatalf("a refused Collect removed the tombstone: %v", err)
	}
	changes := count(t, s.Changes(bg, "t", 0, 0))

	if err := s.Collect(bg, "t", "k", tomb.Version.ID(), []string{"b1", "b2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(bg, "t", "k"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("Get after Collect = %v, want NotFound", err)
	}
	for b, want := range map[string]bool{"b1": false, "b2": false, "b3": true} {
		if _, ok, err := s.SyncState(b, "t", "k"); err != nil || ok != want {
			t.Fatalf("SyncState(%s) after Collect: present %v, %v; want %v", b, ok, err, want)
		}
	}
	if n := count(t, s.Changes(bg, "t", 0, 0)); n != changes {
		t.Fatalf("Collect wrote to the change log: %d entries, want %d", n, changes)
	}
	if _, ok := w.has(tomb.Seq + 1); ok {
		t.Fatal("the Watcher was told of a collection")
	}
	// Collecting again finds no row and removes the remaining sync state.
	if err := s.Collect(bg, "t", "k", tomb.Version.ID(), []string{"b3"}); err != nil {
		t.Fatalf("Collect of an absent key = %v, want nil", err)
	}
	if _, ok, _ := s.SyncState("b3", "t", "k"); ok {
		t.Fatal("Collect of an absent key kept the sync state")
	}

	// A new write starts a new history that the old tombstone does not
	// dominate: the floor rule must not delete it where the tombstone lives on.
	again := mustPut(t, s, "t", "k", `{"a":2}`)
	if o := again.Version.Compare(&tomb.Version); o != doc.After {
		t.Fatalf("write after Collect is %v the collected tombstone (%v vs %v), want after", o, again.Version.Vector, tomb.Version.Vector)
	}
	if again.Version.Parent != (doc.ID{}) || !again.Created {
		t.Fatalf("write after Collect: %+v, want a fresh version", again)
	}
	if err := w.bad; err != nil {
		t.Fatal(err)
	}

	// Durable: the collection survives a reopen.
	tomb2, err := s.Delete(bg, "t", "other", doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Collect(bg, "t", "other", tomb2.Version.ID(), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{})
	if _, err := s.Get(bg, "t", "other"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("Get after Collect and reopen = %v, want NotFound", err)
	}
	if r, err := s.Get(bg, "t", "k"); err != nil || string(r.Body) != `{"a":2}` {
		t.Fatalf("Get(k) after reopen = %q, %v", r.Body, err)
	}
}

// TestFreshVersionAfterForeignTombstone: a tombstone made by another node
// over this node's version is collected; the node's next write to the key
// is concurrent with it, never dominated.
func TestFreshVersionAfterForeignTombstone(t *testing.T) {
	s := openT(t, "", Options{})
	for range 5 {
		mustPut(t, s, "t", "noise", `{}`) // so the node's Seq runs ahead of the key's counter
	}
	v := mustPut(t, s, "t", "k", `{}`)
	tomb := doc.Derive(&v.Version, 77, v.Version.HLC+1, nil, true)
	if _, err := s.Apply(bg, "t", "k", tomb, nil, v.Version.ID(), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Collect(bg, "t", "k", tomb.ID(), nil); err != nil {
		t.Fatal(err)
	}
	again := mustPut(t, s, "t", "k", `{"b":1}`)
	if o := again.Version.Compare(&tomb); o != doc.Concurrent {
		t.Fatalf("write after Collect is %v the foreign tombstone (%v vs %v), want concurrent", o, again.Version.Vector, tomb.Vector)
	}
}

// TestCollectRacesWrites: a Put queued before a Collect of the previous
// tombstone wins; the Collect then refuses, and Get sees the Put.
func TestCollectRacesWrites(t *testing.T) {
	s := openT(t, "", Options{})
	mustPut(t, s, "t", "k", `{}`)
	tomb, err := s.Delete(bg, "t", "k", doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Put(bg, "t", "k", []byte(`{"new":1}`), doc.Precondition{})
		done <- err
	}()
	err = s.Collect(bg, "t", "k", tomb.Version.ID(), nil)
	if perr := <-done; perr != nil {
		t.Fatal(perr)
	}
	rec, gerr := s.Get(bg, "t", "k")
	switch {
	case err == nil && gerr == nil && string(rec.Body) == `{"new":1}`: // collected, then the Put
	case fault.ClassOf(err) == fault.PreconditionFailed && gerr == nil && string(rec.Body) == `{"new":1}`: // the Put first
	default:
		t.Fatalf("Collect = %v; then Get = %q, %v", err, rec.Body, gerr)
	}
}

func TestSyncStateBody(t *testing.T) {
	s := openT(t, "", Options{})
	body := []byte(`{"x":1}`)
	v := doc.Derive(nil, 9, 5, body, false)
	for _, tc := range []struct {
		key  string
		body []byte
	}{{"none", nil}, {"empty", []byte{}}, {"some", body}} {
		if err := s.PutSyncState("b", "t", tc.key, SyncState{Base: v, RemoteETag: "etag-" + tc.key, Body: tc.body}); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.SyncState("b", "t", tc.key)
		if err != nil || !ok || got.RemoteETag != "etag-"+tc.key || got.Base.ID() != v.ID() ||
			!bytes.Equal(got.Body, tc.body) || (got.Body == nil) != (tc.body == nil) {
			t.Fatalf("%s: SyncState = %+v, %v, %v; want body %q", tc.key, got, ok, err, tc.body)
		}
	}
	for r, err := range s.ListSyncState(bg, "b", "t", "") {
		if err != nil || r.Body != nil || r.RemoteETag != "etag-"+r.Key {
			t.Fatalf("ListSyncState yielded %+v, %v; want no body", r, err)
		}
	}
	// An Apply carries a base with a body in its batch.
	rec, err := s.Apply(bg, "t", "doc", v, body, doc.ID{}, &SyncUpdate{Backend: "b", State: SyncState{Base: v, RemoteETag: "e", Body: body}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.SyncState("b", "t", "doc"); !bytes.Equal(got.Body, body) || rec.Version.ID() != v.ID() {
		t.Fatalf("base after Apply: %+v", got)
	}
}

// Every write of sync-state rows moves the sync generation; other writes
// do not.
func TestSyncGen(t *testing.T) {
	s := openT(t, "", Options{})
	rec := mustPut(t, s, "t", "k", `{"a":1}`)
	changes := func(name string, want bool, f func() error) {
		t.Helper()
		gen := s.SyncGen()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := !s.SyncUnchanged(gen); got != want {
			t.Fatalf("%s: sync states changed = %v, want %v", name, got, want)
		}
	}
	changes("Put", false, func() error { _, err := s.Put(bg, "t", "k2", []byte(`{}`), doc.Precondition{}); return err })
	changes("PutCheckpoint", false, func() error { return s.PutCheckpoint("b", "t", []byte("x")) })
	changes("PutSyncState", true, func() error { return s.PutSyncState("b", "t", "k", SyncState{Base: rec.Version}) })
	changes("DeleteSyncState", true, func() error { return s.DeleteSyncState("b", "t", "k") })
	v := doc.Derive(&rec.Version, 2, 1, []byte(`{"a":2}`), false)
	changes("Apply without a SyncUpdate", false, func() error {
		_, err := s.Apply(bg, "t", "k", v, []byte(`{"a":2}`), rec.Version.ID(), nil)
		return err
	})
	v3 := doc.Derive(&v, 3, 1, []byte(`{"a":3}`), false)
	changes("Apply with a SyncUpdate", true, func() error {
		_, err := s.Apply(bg, "t", "k", v3, []byte(`{"a":3}`), v.ID(), &SyncUpdate{Backend: "b", State: SyncState{Base: v3}})
		return err
	})
	tomb, err := s.Delete(bg, "t", "k", doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	changes("Collect", true, func() error { return s.Collect(bg, "t", "k", tomb.Version.ID(), []string{"b"}) })

	// A write in progress counts as a change until it is visible.
	gen := s.SyncGen()
	done := s.syncWrite()
	if s.SyncUnchanged(gen) {
		t.Fatal("SyncUnchanged during a sync-state write")
	}
	done()
	if s.SyncUnchanged(gen) {
		t.Fatal("SyncUnchanged after a sync-state write")
	}
}
