package doc

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cairnstore/cairn/internal/fault"
)

func sib(writer uint64, hlc Timestamp, vector Vector, body string, tomb bool) Sibling {
	v := Version{Vector: vector, HLC: hlc, Writer: writer, Tombstone: tomb}
	var b []byte
	if !tomb {
		b = []byte(body)
	}
	v.Hash = HashBody(b)
	return Sibling{Version: v, Body: b}
}

func TestMakeSiblings(t *testing.T) {
	a := sib(1, 10, vec(1, 2), `{"a":1}`, false)
	b := sib(2, 20, vec(1, 1, 2, 1), `{"b":1}`, false)
	c := sib(3, 5, vec(1, 1, 3, 1), "", true)
	aOld := sib(1, 8, vec(1, 1), `{"a":0}`, false) // a's ancestor: dominated

	want, wantBody, err := MakeSiblings([]Sibling{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	// The set is a function of the set of members: any order, duplicates and
	// dominated members give the same bytes.
	for _, in := range [][]Sibling{{c, b, a}, {b, a, c, a}, {aOld, a, b, c}, {c, aOld, b, a, b}} {
		got, body, err := MakeSiblings(in)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID() != want.ID() || !bytes.Equal(body, wantBody) {
			t.Errorf("MakeSiblings(%d members) = %s, want %s", len(in), got.ID(), want.ID())
		}
	}
	if !want.Siblings || want.Tombstone {
		t.Errorf("flags: siblings %v tombstone %v", want.Siblings, want.Tombstone)
	}
	if got, w := want.Vector, vec(1, 2, 2, 1, 3, 1); !equalVec(got, w) {
		t.Errorf("vector %v, want the pointwise maximum %v", got, w)
	}
	for _, m := range []Sibling{a, b, c} {
		if o := want.Compare(&m.Version); o != After {
			t.Errorf("set vs member: %v, want after", o)
		}
	}
	if want.HLC != 20 || want.Writer != 2 || want.Parent != b.Version.ID() || want.Hash != HashBody(wantBody) {
		t.Errorf("set version %+v: want the winner's (b) writer and parent, the max HLC", want)
	}
	sibs, err := DecodeSiblings(wantBody)
	if err != nil {
		t.Fatal(err)
	}
	gotIDs := []ID{}
	for _, s := range sibs {
		gotIDs = append(gotIDs, s.Version.ID())
		if HashBody(s.Body) != s.Version.Hash {
			t.Errorf("sibling %s: body does not match its hash", s.Version.ID())
		}
	}
	if wantIDs := []ID{b.Version.ID(), a.Version.ID(), c.Version.ID()}; !equalIDs(gotIDs, wantIDs) {
		t.Errorf("decoded order %v, want last writer first %v", gotIDs, wantIDs)
	}

	// The set survives a version round trip.
	var back Version
	if err := back.UnmarshalBinary(want.AppendBinary(nil)); err != nil || back.ID() != want.ID() || !back.Siblings {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func equalIDs(a, b []ID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMakeSiblingsRefuses(t *testing.T) {
	a := sib(1, 10, vec(1, 2), `{"a":1}`, false)
	b := sib(2, 20, vec(1, 1, 2, 1), `{"b":1}`, false)
	set, body, _ := MakeSiblings([]Sibling{a, b})
	newer := sib(1, 30, vec(1, 3, 2, 1), `{"n":1}`, false) // dominates both
	badTomb := sib(3, 5, vec(3, 1), "", true)
	badTomb.Body = []byte("x")
	tests := []struct {
		name string
		in   []Sibling
	}{
		{"one", []Sibling{a}},
		{"same twice", []Sibling{a, a}},
		{"one dominates", []Sibling{a, b, newer}},
		{"nested set", []Sibling{a, {Version: set, Body: body}}},
		{"tombstone with body", []Sibling{a, badTomb}},
	}
	for _, tt := range tests {
		if _, _, err := MakeSiblings(tt.in); fault.ClassOf(err) != fault.Invalid {
			t.Errorf("%s: err %v, want class invalid", tt.name, err)
		}
	}
}

func TestVersionFlagsSiblingsTombstone(t *testing.T) {
	v := Version{Vector: vec(1, 1), Siblings: true}
	b := v.AppendBinary(nil)
	b[1] |= flagTombstone
	var got Version
	if err := got.UnmarshalBinary(b); !errors.Is(err, ErrBadVersion) {
		t.Errorf("tombstone sibling set decoded: %v", err)
	}
}

func TestDecodeSiblingsBad(t *testing.T) {
	a := sib(1, 10, vec(1, 2), `{"a":1}`, false)
	b := sib(2, 20, vec(1, 1, 2, 1), `{"b":1}`, false)
	_, body, _ := MakeSiblings([]Sibling{a, b})
	for name, in := range map[string][]byte{
		"empty":     nil,
		"format":    append([]byte{9}, body[1:]...),
		"truncated": body[:len(body)-1],
		"trailing":  append(bytes.Clone(body), 0),
		"count one": append([]byte{1, 1}, body[2:]...),
	} {
		if _, err := DecodeSiblings(in); !errors.Is(err, ErrBadSiblings) {
			t.Errorf("%s: err %v, want ErrBadSiblings", name, err)
		}
	}
}

func TestConflictError(t *testing.T) {
	a := sib(1, 10, vec(1, 2), `{"a":1}`, false)
	b := sib(2, 20, vec(1, 1, 2, 1), `{"b":1}`, false)
	set, body, _ := MakeSiblings([]Sibling{a, b})
	err := ConflictError("doc.get", "t", "k", set.ETag(), body)
	if fault.ClassOf(err) != fault.Conflict {
		t.Fatalf("class %v, want conflict", fault.ClassOf(err))
	}
	var se *SiblingsError
	if !errors.As(err, &se) || se.ETag != set.ETag() || len(se.Siblings) != 2 ||
		se.Siblings[0] != b.Version.ETag() || se.Siblings[1] != a.Version.ETag() {
		t.Fatalf("SiblingsError %+v", se)
	}
	if err := ConflictError("doc.get", "t", "k", set.ETag(), body[:3]); fault.ClassOf(err) != fault.Corruption {
		t.Errorf("bad body: class %v, want corruption", fault.ClassOf(err))
	}
}

func FuzzDecodeSiblings(f *testing.F) {
	a := sib(1, 10, vec(1, 2), `{"a":1}`, false)
	b := sib(2, 20, vec(1, 1, 2, 1), "", true)
	_, body, _ := MakeSiblings([]Sibling{a, b})
	f.Add(body)
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, in []byte) {
		sibs, err := DecodeSiblings(in)
		if err != nil {
			return
		}
		if len(sibs) < 2 {
			t.Fatalf("decoded %d siblings", len(sibs))
		}
		for _, s := range sibs {
			if s.Version.Siblings || (s.Version.Tombstone && len(s.Body) > 0) {
				t.Fatalf("decoded an invalid sibling %+v", s.Version)
			}
		}
	})
}

// BenchmarkConflictError is what a GET of a document with open siblings
// costs beyond a hit: decoding the set and hashing each sibling's version
// for its ETag.
func BenchmarkConflictError(b *testing.B) {
	body := []byte(`{"name":"Ada","tags":["a","b","c"],"n":12345}`)
	x := sib(1, 10, vec(1, 2), string(body), false)
	y := sib(2, 20, vec(1, 1, 2, 1), string(body)+" ", false)
	set, setBody, err := MakeSiblings([]Sibling{x, y})
	if err != nil {
		b.Fatal(err)
	}
	etag := set.ETag()
	b.ReportAllocs()
	for b.Loop() {
		if ConflictError("docs.get", "t", "k", etag, setBody) == nil {
			b.Fatal("no error")
		}
	}
}
