package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
)

func TestQuarantine(t *testing.T) {
	s := openT(t, "", Options{})
	at := time.Date(2026, 11, 27, 3, 0, 0, 123, time.UTC)
	recs := []QuarantineRecord{
		{Backend: "b", Tenant: "t", Key: "k", ETag: "e1", Time: at, Reason: "checksum mismatch", Size: 5, Raw: []byte("\x00bad\xff")},
		{Backend: "b", Tenant: "t", Key: "k", ETag: "e2", Time: at, Reason: "truncated", Size: 1 << 30, Raw: []byte("cut")},
		{Backend: "b", Tenant: "t", Key: "k2", ETag: "e1", Time: at, Reason: "r", Size: 0},
		{Backend: "b2", Tenant: "t", Key: "k", ETag: "e1", Time: at, Reason: "r", Size: 1, Raw: []byte("x")},
	}
	for _, r := range append(recs, recs[0]) { // the repeat rewrites one row
		if err := s.PutQuarantine(r); err != nil {
			t.Fatal(err)
		}
	}
	var all []QuarantineRecord
	for r, err := range s.Quarantine(bg) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	if len(all) != len(recs) {
		t.Fatalf("listed %d rows, want %d: %+v", len(all), len(recs), all)
	}
	for i, r := range all {
		w := recs[i]
		if r.Backend != w.Backend || r.Tenant != w.Tenant || r.Key != w.Key || r.ETag != w.ETag ||
			!r.Time.Equal(w.Time) || r.Reason != w.Reason || r.Size != w.Size || r.Raw != nil {
			t.Errorf("row %d = %+v, want %+v without Raw", i, r, w)
		}
	}
	// One key's rows, with bytes; "k" does not take in "k2"'s.
	var one []QuarantineRecord
	for r, err := range s.QuarantineOf(bg, "b", "t", "k") {
		if err != nil {
			t.Fatal(err)
		}
		one = append(one, r)
	}
	if len(one) != 2 || !bytes.Equal(one[0].Raw, recs[0].Raw) || !bytes.Equal(one[1].Raw, recs[1].Raw) {
		t.Fatalf("QuarantineOf(b, t, k) = %+v, want e1 and e2 with their bytes", one)
	}
	var bad error
	for _, err := range s.QuarantineOf(bg, "b", "T!", "k") {
		bad = err
	}
	if fault.ClassOf(bad) != fault.Invalid {
		t.Fatalf("bad tenant: %v, want class invalid", bad)
	}
	if err := s.PutQuarantine(QuarantineRecord{Backend: "", Tenant: "t", Key: "k"}); fault.ClassOf(err) != fault.Invalid {
		t.Fatalf("no backend: %v, want class invalid", err)
	}
}
