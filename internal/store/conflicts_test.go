package store

import (
	"fmt"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
)

func TestConflictHistory(t *testing.T) {
	s := openT(t, "", Options{})
	live := doc.Derive(nil, 1, 10, []byte(`{"a":1}`), false)
	tomb := doc.Derive(&live, 2, 11, nil, true)
	win := doc.Derive(&live, 3, 12, []byte(`{}`), false)
	recs := []ConflictRecord{
		{Key: "k", Loser: live, Body: []byte(`{"a":1}`), Winner: win.ID(), Reason: "lww"},
		{Key: "k", Loser: tomb, Winner: win.ID(), Reason: "lww"},
		{Key: "k2", Loser: live, Body: []byte(`{"a":1}`), Winner: win.ID()},
	}
	for _, c := range append(recs, recs[0]) { // the repeat is idempotent
		if err := s.PutConflict("t", c); err != nil {
			t.Fatal(err)
		}
	}
	var got []ConflictRecord
	for c, err := range s.Conflicts(bg, "t", "") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if len(got) != 3 {
		t.Fatalf("got %d records, want 3", len(got))
	}
	n := 0
	for c, err := range s.Conflicts(bg, "t", "k") {
		if err != nil {
			t.Fatal(err)
		}
		if c.Key != "k" || c.Winner != win.ID() || c.Reason != "lww" || (c.Loser.Tombstone != (c.Body == nil)) {
			t.Errorf("record %+v", c)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("key k has %d records, want 2", n)
	}
	if err := s.PutConflict("Bad Tenant", recs[0]); err == nil {
		t.Fatal("PutConflict accepted a bad tenant")
	}
}

// TestConflictHistoryBounded: TrimConflicts keeps the newest keep lost
// versions of a key (by HLC, whatever order they were recorded in), leaves
// other keys alone, and drops the history of a key whose tombstone was
// collected.
func TestConflictHistoryBounded(t *testing.T) {
	s := openT(t, "", Options{})
	win := doc.Derive(nil, 9, 1, []byte(`{}`), false)
	const n = MaxConflictHistory + 10
	mustPut(t, s, "t", "hot", `{}`)
	for i := range n {
		hlc := uint64(1000 + (i*31)%n)             // each once, not in order
		body := []byte(fmt.Sprintf(`{"n":%d}`, i)) // a version of its own
		v := doc.Derive(nil, 1, doc.Timestamp(hlc), body, false)
		if err := s.PutConflict("t", ConflictRecord{Key: "hot", Loser: v, Body: body, Winner: win.ID()}); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(t, s, "t", "other", `{}`)
	other := doc.Derive(nil, 1, 5, []byte(`{}`), false)
	if err := s.PutConflict("t", ConflictRecord{Key: "other", Loser: other, Body: []byte(`{}`), Winner: win.ID()}); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.TrimConflicts(bg, "t", MaxConflictHistory); err != nil || removed != n-MaxConflictHistory {
		t.Fatalf("TrimConflicts = %d, %v; want %d removed", removed, err, n-MaxConflictHistory)
	}
	var kept []doc.Timestamp
	for c, err := range s.Conflicts(bg, "t", "hot") {
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, c.Loser.HLC)
	}
	if len(kept) != MaxConflictHistory {
		t.Fatalf("hot keeps %d records, want %d", len(kept), MaxConflictHistory)
	}
	for _, h := range kept {
		if h < 1000+n-MaxConflictHistory {
			t.Fatalf("kept a record of HLC %d, older than the newest %d", h, MaxConflictHistory)
		}
	}
	tomb, err := s.Delete(bg, "t", "hot", doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := s.TrimConflicts(bg, "t", MaxConflictHistory); err != nil || removed != 0 {
		t.Fatalf("TrimConflicts of a deleted key not collected yet = %d, %v; want its history kept", removed, err)
	}
	if err := s.Collect(bg, "t", "hot", tomb.Version.ID(), nil); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.TrimConflicts(bg, "t", MaxConflictHistory); err != nil || removed != MaxConflictHistory {
		t.Fatalf("TrimConflicts after the collection = %d, %v; want the %d records dropped", removed, err, MaxConflictHistory)
	}
	if got := count(t, s.Conflicts(bg, "t", "other")); got != 1 {
		t.Fatalf("%d records of another key, want 1", got)
	}
}
