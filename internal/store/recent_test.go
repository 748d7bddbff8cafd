package store

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// A write to a key updated a moment ago is decided against the state that
// update recorded, without reading the key's row from Pebble (a
// readCurrent moves missScore). A create is not recorded.
func TestRecentSkipsTheRead(t *testing.T) {
	s := openT(t, "", Options{})
	v1 := mustPut(t, s, "t", "k", `{"v":1}`)
	if _, found := s.recent.get(overlayKey("t", "k")); found {
		t.Fatal("a create was recorded")
	}
	v2, err := s.Put(bg, "t", "k", []byte(`{"v":2}`), doc.Precondition{IfMatch: []string{v1.ETag}})
	if err != nil {
		t.Fatal(err)
	}
	s.missScore.Store(0)
	v3, err := s.Put(bg, "t", "k", []byte(`{"v":3}`), doc.Precondition{IfMatch: []string{v2.ETag}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.missScore.Load(); got != 0 {
		t.Fatalf("the write after an update read the row from Pebble (missScore %d)", got)
	}
	if v3.Version.Parent != v2.Version.ID() {
		t.Fatalf("parent %s, want %s", v3.Version.Parent, v2.Version.ID())
	}
}

// A bulk write replaces a key without recording its state, so it must
// forget the state a single write recorded: otherwise, once the overlay
// no longer holds the key, the next write is decided against the version
// the bulk write replaced.
func TestRecentForgetsBulkWrites(t *testing.T) {
	s := openT(t, "", Options{maxOverlay: 1})
	mustPut(t, s, "t", "k", `{"v":0}`)
	v1 := mustPut(t, s, "t", "k", `{"v":1}`) // an update: recorded
	if _, found := s.recent.get(overlayKey("t", "k")); !found {
		t.Fatal("an update was not recorded")
	}
	recs, err := s.PutBatch(bg, "t", []Item{{Key: "k", Body: []byte(`{"v":2}`)}})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "t", "other", `{}`)
	mustPut(t, s, "t", "other", `{}`) // a new group, after k's is committed: prunes
	if _, found := s.overlay[overlayKey("t", "k")]; found {
		t.Fatal("the overlay still holds k") // read between writes: the committer is idle
	}
	_, err = s.Put(bg, "t", "k", []byte(`{"v":3}`), doc.Precondition{IfMatch: []string{v1.ETag}})
	wantClass(t, "If-Match on the version the batch replaced", err, fault.PreconditionFailed)
	v3, err := s.Put(bg, "t", "k", []byte(`{"v":3}`), doc.Precondition{IfMatch: []string{recs[0].ETag}})
	if err != nil {
		t.Fatalf("If-Match on the batch's version: %v", err)
	}
	if v3.Version.Parent != recs[0].Version.ID() {
		t.Fatalf("parent %s, want the batch's %s", v3.Version.Parent, recs[0].Version.ID())
	}
}

// Whatever the mix of writes (updates, creates, deletes, collections,
// batches) and however small the table, every state it holds is the one
// Pebble holds for the key.
func TestRecentMatchesPebble(t *testing.T) {
	s := openT(t, "", Options{recentKeys: recentShards * 2, maxOverlay: 4})
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	etags := map[string]string{}
	tombs := map[string]doc.ID{} // the keys whose last write is a delete, and its version
	for i := range 2000 {
		k := keys[rng.IntN(len(keys))]
		body := []byte(fmt.Sprintf(`{"i":%d}`, i))
		var rec Record
		var err error
		switch op := rng.IntN(12); {
		case op >= 10 && tombs[k] != (doc.ID{}):
			// A collection removes the row, after which a write creates.
			if err := s.Collect(bg, "t", k, tombs[k], nil); err != nil {
				t.Fatalf("write %d: collect %s: %v", i, k, err)
			}
			delete(tombs, k)
		case op < 4:
			rec, err = s.Put(bg, "t", k, body, doc.Precondition{})
		case op < 6 && etags[k] != "":
			rec, err = s.Put(bg, "t", k, body, doc.Precondition{IfMatch: []string{etags[k]}})
			if err != nil {
				t.Fatalf("write %d: If-Match on %s's last ETag: %v", i, k, err)
			}
		case op < 8:
			rec, err = s.Delete(bg, "t", k, doc.Precondition{})
			if fault.ClassOf(err) == fault.NotFound {
				err = nil
			}
		default:
			var recs []Record
			recs, err = s.PutBatch(bg, "t", []Item{{Key: k, Body: body}, {Key: keys[rng.IntN(len(keys))], Body: body}})
			for _, r := range recs {
				etags[r.Key] = r.ETag
				delete(tombs, r.Key)
			}
			rec = Record{}
		}
		if err != nil {
			t.Fatalf("write %d to %s: %v", i, k, err)
		}
		if rec.Key != "" {
			etags[k] = rec.ETag
			delete(tombs, k)
			if rec.Version.Tombstone {
				etags[k] = ""
				tombs[k] = rec.Version.ID()
			}
		}
		for _, k := range keys {
			c, found := s.recent.get(overlayKey("t", k))
			if !found {
				continue
			}
			want, err := s.readCurrent(docKey("t", k))
			if err != nil {
				t.Fatal(err)
			}
			if c.exists != want.exists || (c.exists && (c.seq != want.seq || c.etag != want.etag || c.id != want.id)) {
				t.Fatalf("after write %d: recent holds %+v for %s, Pebble %+v", i, c, k, want)
			}
		}
	}
	if n := s.recent.n.Load(); n > recentShards*2 {
		t.Fatalf("%d entries, bound %d", n, recentShards*2)
	}
}
