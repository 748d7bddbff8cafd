package store

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// The committer's derive must write exactly the version doc.Derive would:
// it only skips hashing what the caller and the overlay already hashed.
func TestDeriveMatchesDoc(t *testing.T) {
	s := openT(t, "", Options{})
	inc := s.Identity().Incarnation
	body := []byte(`{"a":1}`)
	parent := doc.Derive(&doc.Version{Vector: doc.Vector{{Replica: 7, Counter: 3}}, HLC: 5}, 7, 9, []byte("x"), false)
	for _, tc := range []struct {
		name      string
		cur       *current
		parent    *doc.Version
		tombstone bool
	}{
		{"first write", &current{}, nil, false},
		{"update", currentOf(4, parent, parent.ID()), &parent, false},
		{"delete", currentOf(4, parent, parent.ID()), &parent, true},
	} {
		hash := doc.HashBody(body)
		if tc.tombstone {
			hash = emptyHash
		}
		got := s.derive(tc.cur, hash, tc.tombstone)
		want := doc.Derive(tc.parent, inc, got.HLC, body, tc.tombstone)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: derive = %+v, doc.Derive = %+v", tc.name, got, want)
		}
	}
}

// A write whose caller read the key's committed state before an overlay
// prune must not be decided against that read: the key may have been
// written, committed and pruned from the overlay in between. This is the
// case lookup's prunedAt check exists for; without it the write below
// derives from the first version (wrong Parent, a lost update) and its
// If-Match on the first version's ETag passes.
func TestStaleReadAfterPrune(t *testing.T) {
	s := openT(t, "", Options{})
	v1 := mustPut(t, s, "t", "k", `{"v":1}`)

	// A writer prepares (reads v1) and is then delayed.
	body := []byte(`{"v":3}`)
	r := &request{ctx: bg, op: opPut, tenant: "t", key: "k", body: body, hash: doc.HashBody(body),
		pre: doc.Precondition{IfMatch: []string{v1.ETag}}}
	if err := s.acquire(); err != nil {
		t.Fatal(err)
	}
	defer s.release()
	s.prepare(r, true)
	if r.seen == nil || r.seen.etag != v1.ETag {
		t.Fatalf("prepare read %+v, want v1", r.seen)
	}

	// Meanwhile k is written again and enough other keys that the next
	// group prunes the overlay, k's entry with it.
	v2 := mustPut(t, s, "t", "k", `{"v":2}`)
	items := make([]Item, maxOverlay+1)
	for i := range items {
		items[i] = Item{Key: fmt.Sprintf("fill-%05d", i), Body: []byte("{}")}
	}
	if _, err := s.PutBatch(bg, "t", items); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "t", "other", `{}`) // a new group: prunes

	_, err := s.send(opNames[opPut], r)
	wantClass(t, "If-Match on the version read before the prune", err, fault.PreconditionFailed)

	// Unconditional, the delayed write derives from v2, not from what it read.
	r2 := &request{ctx: bg, op: opPut, tenant: "t", key: "k", body: body, hash: doc.HashBody(body)}
	s.prepare(r2, true)
	v3 := mustPut(t, s, "t", "k", `{"v":2.5}`)
	mustPut(t, s, "t", "other2", `{}`) // k's v3 is committed; not yet pruned (the overlay is small again)
	rec, err := s.send(opNames[opPut], r2)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version.Parent != v3.Version.ID() {
		t.Fatalf("parent %s, want v3 %s (v2 %s)", rec.Version.Parent, v3.Version.ID(), v2.Version.ID())
	}
}

// PutOwned keeps the caller's buffer instead of a copy; Put copies.
func TestPutOwned(t *testing.T) {
	s := openT(t, "", Options{})
	body := []byte(`{"a":1}`)
	rec, err := s.PutOwned(bg, "t", "k", body, doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	if &rec.Body[0] != &body[0] {
		t.Fatal("PutOwned returned a copy of the body")
	}
	got, err := s.Get(bg, "t", "k")
	if err != nil || string(got.Body) != `{"a":1}` || got.ETag != rec.ETag {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	rec, err = s.Put(bg, "t", "k", body, doc.Precondition{IfMatch: []string{rec.ETag}})
	if err != nil {
		t.Fatal(err)
	}
	if &rec.Body[0] == &body[0] {
		t.Fatal("Put kept the caller's buffer")
	}
	if _, err := s.PutOwned(bg, "t", "a\x00b", body, doc.Precondition{}); err == nil {
		t.Fatal("PutOwned accepted a bad key")
	}
}

// readCurrent's two ways to read (DB.Get, and an iterator using the L6
// bloom filters) must agree, in the memtable and in L6, for present, absent
// and deleted keys; and it must switch between them with the workload.
func TestReadCurrentPaths(t *testing.T) {
	s := openT(t, "", Options{})
	live := mustPut(t, s, "t", "live", `{"a":1}`)
	mustPut(t, s, "t", "gone", `{}`)
	gone, err := s.Delete(bg, "t", "gone", doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(where string) {
		t.Helper()
		for _, tc := range []struct {
			key  string
			want Record
		}{{"live", live}, {"gone", gone}, {"absent", Record{}}, {"liv", Record{}}, {"live2", Record{}}} {
			var got [2]*current
			for i, score := range []int64{missScoreMax, -missScoreMax} {
				s.missScore.Store(score)
				c, err := s.readCurrent(docKey("t", tc.key))
				if err != nil {
					t.Fatalf("%s %s: %v", where, tc.key, err)
				}
				got[i] = c
			}
			if !reflect.DeepEqual(got[0], got[1]) {
				t.Fatalf("%s %s: iterator read %+v, Get read %+v", where, tc.key, got[0], got[1])
			}
			if c := got[0]; c.exists != (tc.want.Seq != 0) || c.seq != tc.want.Seq || c.etag != tc.want.ETag {
				t.Fatalf("%s %s: read %+v, want %+v", where, tc.key, c, tc.want)
			}
		}
	}
	check("memtable")
	if err := s.db.Compact(bg, []byte{0}, []byte{0xff}, true); err != nil {
		t.Fatal(err)
	}
	if m := s.db.Metrics(); m.Levels[6].TablesCount == 0 {
		t.Fatalf("no table in L6 after a full compaction:\n%s", m)
	}
	check("L6")

	s.missScore.Store(0)
	for i := range missScoreMax + 1 {
		if _, err := s.readCurrent(docKey("t", "live")); err != nil {
			t.Fatal(err)
		}
		if i == 0 && s.missScore.Load() != -1 {
			t.Fatalf("score %d after a hit, want -1", s.missScore.Load())
		}
	}
	if got := s.missScore.Load(); got != -missScoreMax {
		t.Fatalf("score %d after many hits, want the bound %d", got, -missScoreMax)
	}
}
