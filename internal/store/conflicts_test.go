package store

import (
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
