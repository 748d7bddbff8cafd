package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// applySet installs a sibling set of two concurrent versions over key (which
// must be absent) and returns the set and its siblings.
func applySet(t *testing.T, s *Store, key string) (doc.Version, []doc.Sibling) {
	t.Helper()
	a := doc.Derive(nil, 1, 10, []byte(`{"a":1}`), false)
	b := doc.Derive(nil, 2, 11, nil, true) // a delete against an update
	sibs := []doc.Sibling{{Version: a, Body: []byte(`{"a":1}`)}, {Version: b}}
	v, body, err := doc.MakeSiblings(sibs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(bg, "t", key, v, body, doc.ID{}, nil); err != nil {
		t.Fatal(err)
	}
	return v, sibs
}

func openKeys(t *testing.T, s *Store, o ListOptions) []string {
	t.Helper()
	var keys []string
	for rec, err := range s.Siblings(bg, "t", o) {
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Version.Siblings || rec.Body == nil {
			t.Fatalf("listed %q: not a sibling set", rec.Key)
		}
		keys = append(keys, rec.Key)
	}
	return keys
}

func TestSiblingsListing(t *testing.T) {
	s := openT(t, "", Options{})
	for _, k := range []string{"a1", "a2", "b1", "c1"} {
		applySet(t, s, k)
	}
	mustPut(t, s, "t", "a0", `{}`) // an ordinary document is not listed
	tests := []struct {
		o    ListOptions
		want string
	}{
		{ListOptions{}, "a1 a2 b1 c1"},
		{ListOptions{Prefix: "a"}, "a1 a2"},
		{ListOptions{After: "a1", Limit: 2}, "a2 b1"},
		{ListOptions{Prefix: "b", After: "a9"}, "b1"},
		{ListOptions{After: "c1"}, ""},
	}
	for _, tt := range tests {
		if got := strings.Join(openKeys(t, s, tt.o), " "); got != tt.want {
			t.Errorf("Siblings(%+v) = %q, want %q", tt.o, got, tt.want)
		}
	}
	if err := firstErr(s.Siblings(bg, "Bad", ListOptions{})); fault.ClassOf(err) != fault.Invalid {
		t.Errorf("bad tenant: %v", err)
	}
}

// TestWriteOverSiblings: the rules of siblings.go, case by case.
func TestWriteOverSiblings(t *testing.T) {
	s := openT(t, "", Options{})
	set, sibs := applySet(t, s, "k")
	live, tomb := sibs[0].Version.ETag(), sibs[1].Version.ETag()
	tests := []struct {
		name  string
		del   bool
		pre   doc.Precondition
		class fault.Class // of the refusal
	}{
		{"plain put", false, doc.Precondition{}, fault.Conflict},
		{"put if-match *", false, doc.Precondition{IfMatch: []string{"*"}}, fault.Conflict},
		{"put if-match other", false, doc.Precondition{IfMatch: []string{`"00"`}}, fault.PreconditionFailed},
		{"put if-none-match *", false, doc.Precondition{IfNoneMatch: []string{"*"}}, fault.Conflict},
		{"put sibling + if-none-match *", false, doc.Precondition{IfMatch: []string{live}, IfNoneMatch: []string{"*"}}, fault.PreconditionFailed},
		{"plain delete", true, doc.Precondition{}, fault.Conflict},
		{"delete if-match other", true, doc.Precondition{IfMatch: []string{`"00"`}}, fault.PreconditionFailed},
	}
	for _, tt := range tests {
		var err error
		if tt.del {
			_, err = s.Delete(bg, "t", "k", tt.pre)
		} else {
			_, err = s.Put(bg, "t", "k", []byte(`{"x":1}`), tt.pre)
		}
		if fault.ClassOf(err) != tt.class {
			t.Errorf("%s: %v, want class %v", tt.name, err, tt.class)
		}
		var se *doc.SiblingsError
		if tt.class == fault.Conflict && (!errors.As(err, &se) || se.ETag != set.ETag() || len(se.Siblings) != 2) {
			t.Errorf("%s: %v does not name the siblings", tt.name, err)
		}
	}
	if keys := openKeys(t, s, ListOptions{}); len(keys) != 1 {
		t.Fatalf("a refused write changed the open list: %v", keys)
	}

	// Naming the set itself, or a sibling, resolves; here by deleting.
	for _, match := range []string{set.ETag(), tomb} {
		s2 := openT(t, "", Options{})
		set2, _ := applySet(t, s2, "k")
		rec, err := s2.Delete(bg, "t", "k", doc.Precondition{IfMatch: []string{match}})
		if err != nil {
			t.Fatalf("delete if-match %s: %v", match, err)
		}
		if rec.Version.Compare(&set2) != doc.After || !rec.Version.Tombstone {
			t.Fatalf("resolution %+v does not dominate the set", rec.Version)
		}
		if keys := openKeys(t, s2, ListOptions{}); len(keys) != 0 {
			t.Fatalf("still open after the resolution: %v", keys)
		}
		// The delete kept the tombstone's content; the live sibling went to
		// the history.
		var lost []ConflictRecord
		for c, err := range s2.Conflicts(bg, "t", "k") {
			if err != nil {
				t.Fatal(err)
			}
			lost = append(lost, c)
		}
		if len(lost) != 1 || lost[0].Loser.ETag() != live || string(lost[0].Body) != `{"a":1}` || lost[0].Winner != rec.Version.ID() {
			t.Fatalf("history %+v, want the live sibling lost to the delete", lost)
		}
	}

	// The rules survive a reopen: the committer reads the set from disk.
	dir := t.TempDir()
	s3 := openT(t, dir, Options{})
	applySet(t, s3, "k")
	if err := s3.Close(); err != nil {
		t.Fatal(err)
	}
	s3 = openT(t, dir, Options{})
	if _, err := s3.Put(bg, "t", "k", []byte(`{}`), doc.Precondition{}); fault.ClassOf(err) != fault.Conflict {
		t.Fatalf("after reopen, plain put: %v, want conflict", err)
	}
	if _, err := s3.Put(bg, "t", "k", []byte(`{}`), doc.Precondition{IfMatch: []string{live}}); err != nil {
		t.Fatalf("after reopen, resolving put: %v", err)
	}
}
