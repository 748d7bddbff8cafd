package node

import (
	"context"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/store"
)

// child is a version derived from parent by replica r, with body.
func child(parent *doc.Version, r uint64, body string) doc.Version {
	return doc.Version{Vector: parent.Vector.Increment(r), HLC: parent.HLC + 1, Writer: r,
		Hash: doc.HashBody([]byte(body)), Parent: parent.ID()}
}

// TestAncestorFromHistory: the siblings' shared parent, held in the
// conflict history, is their common ancestor; a damaged copy of it, or
// siblings that do not share it, give none.
func TestAncestorFromHistory(t *testing.T) {
	n := startReplNodeWith(t, nil)
	ctx := context.Background()
	st := n.store
	p, err := st.Put(ctx, "acme", "k", []byte(`{"qty":1}`), doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := child(&p.Version, 0xa1, `{"qty":2}`), child(&p.Version, 0xb1, `{"qty":3}`)
	set, body, err := doc.MakeSiblings([]doc.Sibling{{Version: a, Body: []byte(`{"qty":2}`)}, {Version: b, Body: []byte(`{"qty":3}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, "acme", "k", set, body, p.Version.ID(), nil); err != nil {
		t.Fatal(err)
	}
	view := consoleView{n.Node}
	if _, ok, err := view.Ancestor(ctx, "acme", "k"); ok || err != nil {
		t.Fatalf("before the parent is in the history: ok %v, err %v", ok, err)
	}
	if err := st.PutConflict("acme", store.ConflictRecord{Key: "k", Loser: p.Version, Body: []byte(`{"qty":9}`), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := view.Ancestor(ctx, "acme", "k"); ok || err != nil {
		t.Fatalf("a damaged parent: ok %v, err %v", ok, err)
	}
	if err := st.PutConflict("acme", store.ConflictRecord{Key: "k", Loser: p.Version, Body: p.Body, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := view.Ancestor(ctx, "acme", "k")
	if err != nil || !ok || got.ETag != p.Version.ETag() || string(got.Body) != `{"qty":1}` || got.SetETag != set.ETag() ||
		got.Source != "the conflict history" {
		t.Fatalf("Ancestor = %+v, %v, %v; want %s from the history", got, ok, err, p.Version.ETag())
	}
	if _, _, err := view.Ancestor(ctx, "acme", "nope"); err == nil {
		t.Fatal("a key never written: no error")
	}
}

// TestNearestCommon: of the kept versions, the nearest live one every
// sibling descends from.
func TestNearestCommon(t *testing.T) {
	body := func(s string) []byte { return []byte(s) }
	v0 := doc.Version{Vector: doc.Vector{}.Increment(1), HLC: 1, Writer: 1, Hash: doc.HashBody(body(`{"v":0}`))}
	v1 := child(&v0, 1, `{"v":1}`)
	a, b := child(&v1, 2, `{"a":1}`), child(&v1, 3, `{"b":1}`)
	other := child(&v0, 4, `{"v":4}`) // concurrent with v1: not an ancestor of a and b
	dead := v1
	dead.Tombstone, dead.Hash = true, doc.HashBody(nil)
	sibs := []doc.Sibling{{Version: a}, {Version: b}}
	c := func(v doc.Version, b string) ancestorCandidate {
		return ancestorCandidate{v: v, body: body(b), source: b}
	}
	for _, tc := range []struct {
		name  string
		cands []ancestorCandidate
		want  string // the chosen body; "" none
	}{
		{"none", nil, ""},
		{"the nearest, either order", []ancestorCandidate{c(v0, `{"v":0}`), c(v1, `{"v":1}`)}, `{"v":1}`},
		{"the nearest, reversed", []ancestorCandidate{c(v1, `{"v":1}`), c(v0, `{"v":0}`)}, `{"v":1}`},
		{"not common", []ancestorCandidate{c(other, `{"v":4}`)}, ""},
		{"damaged", []ancestorCandidate{c(v1, `{"v":5}`), c(v0, `{"v":0}`)}, `{"v":0}`},
		{"a tombstone", []ancestorCandidate{c(dead, ``)}, ""},
		{"a sibling itself is no ancestor of the other", []ancestorCandidate{c(a, `{"a":1}`)}, ""},
	} {
		got := nearestCommon(sibs, tc.cands)
		if (got == nil) != (tc.want == "") || (got != nil && string(got.body) != tc.want) {
			t.Errorf("%s: got %+v, want %s", tc.name, got, tc.want)
		}
	}
	if _, shared := sharedParent(sibs); !shared {
		t.Error("a and b share v1")
	}
	if _, shared := sharedParent([]doc.Sibling{{Version: a}, {Version: other}}); shared {
		t.Error("a and other share no parent")
	}
	if _, shared := sharedParent([]doc.Sibling{{Version: v0}, {Version: v0}}); shared {
		t.Error("first writes share no parent")
	}
}
