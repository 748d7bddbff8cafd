package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// TestApplyBatch: every item is its own compare-and-set (a failed one skips
// only that item), each installed item has its version, body, change-log
// entry and sync state, and the whole batch is one commit.
func TestApplyBatch(t *testing.T) {
	var commits []int
	s := openT(t, "", Options{OnCommit: func(n int, _ time.Duration) { commits = append(commits, n) }})
	const remote = 0xabcdef
	hlc := doc.MakeTimestamp(time.Now().UnixMilli(), 1)
	local := mustPut(t, s, "t", "k1", `{"local":1}`) // k1 exists: expecting absent fails
	commits = commits[:0]
	var items []ApplyItem
	for i := range 4 {
		body := []byte(fmt.Sprintf(`{"i":%d}`, i))
		v := doc.Derive(nil, remote, hlc+doc.Timestamp(i), body, false)
		items = append(items, ApplyItem{Key: fmt.Sprintf("k%d", i), Version: v, Body: body,
			Sync: &SyncUpdate{Backend: "fs", State: SyncState{Base: v, RemoteETag: fmt.Sprintf("e%d", i)}}})
	}
	tomb := doc.Derive(nil, remote, hlc+9, nil, true)
	items = append(items, ApplyItem{Key: "gone", Version: tomb, Body: []byte("ignored"),
		Sync: &SyncUpdate{Backend: "fs", State: SyncState{Base: tomb, RemoteETag: "eg"}}})
	gen := s.SyncGen()
	errs, err := s.ApplyBatch(bg, "t", items)
	if err != nil {
		t.Fatal(err)
	}
	if len(commits) != 1 || commits[0] != len(items)-1 {
		t.Fatalf("commits = %v, want one of %d writes", commits, len(items)-1)
	}
	if s.SyncUnchanged(gen) {
		t.Fatal("SyncUnchanged after a batch that wrote sync states")
	}
	for i, it := range items {
		if it.Key == "k1" {
			if !errors.Is(errs[i], fault.ErrPreconditionFailed) {
				t.Fatalf("item k1 over a local version: %v, want PreconditionFailed", errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Fatalf("item %s: %v", it.Key, errs[i])
		}
		rec, err := s.Get(bg, "t", it.Key)
		switch {
		case it.Version.Tombstone:
			if err != nil || !rec.Version.Tombstone || rec.Version.ID() != it.Version.ID() {
				t.Fatalf("Get of an applied tombstone = %+v, %v", rec, err)
			}
		case err != nil || rec.Version.ID() != it.Version.ID() || string(rec.Body) != string(it.Body):
			t.Fatalf("Get(%s) = %+v, %v; want version %v body %s", it.Key, rec, err, it.Version.ID(), it.Body)
		}
		st, ok, err := s.SyncState("fs", "t", it.Key)
		if err != nil || !ok || st.RemoteETag != it.Sync.State.RemoteETag || st.Base.ID() != it.Version.ID() {
			t.Fatalf("SyncState(%s) = %+v, %v, %v", it.Key, st, ok, err)
		}
	}
	if rec, err := s.Get(bg, "t", "k1"); err != nil || rec.Version.ID() != local.Version.ID() {
		t.Fatalf("k1 after its failed CAS = %+v, %v; want the local version kept", rec, err)
	}
	if _, ok, _ := s.SyncState("fs", "t", "k1"); ok {
		t.Fatal("a failed item's sync state was written")
	}
	if n := count(t, s.Changes(bg, "t", local.Seq, 0)); n != len(items)-1 {
		t.Fatalf("%d change-log entries after the batch, want %d", n, len(items)-1)
	}
	checkConsistent(t, s)
	// Applying again is refused item by item, nothing changes.
	errs, err = s.ApplyBatch(bg, "t", items)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if !errors.Is(e, fault.ErrPreconditionFailed) {
			t.Fatalf("second apply of %s = %v, want PreconditionFailed", items[i].Key, e)
		}
	}
}

// TestApplyBatchInvalid: one bad item refuses the whole batch before
// anything is queued.
func TestApplyBatchInvalid(t *testing.T) {
	s := openT(t, "", Options{})
	body := []byte(`{}`)
	v := doc.Derive(nil, 1, doc.MakeTimestamp(time.Now().UnixMilli(), 0), body, false)
	for name, it := range map[string]ApplyItem{
		"hash":    {Key: "b", Version: v, Body: []byte(`{"x":1}`)},
		"key":     {Key: "", Version: v, Body: body},
		"backend": {Key: "b", Version: v, Body: body, Sync: &SyncUpdate{Backend: ""}},
	} {
		errs, err := s.ApplyBatch(bg, "t", []ApplyItem{{Key: "a", Version: v, Body: body}, it})
		if errs != nil || !errors.Is(err, fault.ErrInvalid) {
			t.Fatalf("%s: ApplyBatch = %v, %v; want Invalid", name, errs, err)
		}
	}
	if _, err := s.Get(bg, "t", "a"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("a refused batch stored its valid item: %v", err)
	}
}
