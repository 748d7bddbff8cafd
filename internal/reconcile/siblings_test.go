package reconcile

import (
	"errors"
	"slices"
	"testing"

	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
)

func manualPolicy(cfg *Config) {
	cfg.PolicyFor = func(string) Policy { return Policy{Strategy: Manual} }
}

// siblingIDs returns the IDs of the siblings s holds for key, nil if its
// document is not a sibling set.
func siblingIDs(t *testing.T, s *store.Store, key string) []doc.ID {
	t.Helper()
	rec, err := s.Get(bg, tenant, key)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Version.Siblings {
		return nil
	}
	sibs, err := doc.DecodeSiblings(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	var ids []doc.ID
	for _, s := range sibs {
		ids = append(ids, s.Version.ID())
	}
	slices.SortFunc(ids, func(a, b doc.ID) int { return slices.Compare(a[:], b[:]) })
	return ids
}

func sortedIDs(recs ...store.Record) []doc.ID {
	var ids []doc.ID
	for _, r := range recs {
		ids = append(ids, r.Version.ID())
	}
	slices.SortFunc(ids, func(a, b doc.ID) int { return slices.Compare(a[:], b[:]) })
	return ids
}

func quiet(t *testing.T, es ...*Engine) {
	t.Helper()
	for range 3 {
		for _, e := range es {
			if st := runRound(t, e); st.Applied() != 0 || st.Conflicts != 0 {
				t.Fatalf("a round over a settled state did something: %+v", st)
			}
		}
	}
}

func sameEverywhere(t *testing.T, key string, ss []*store.Store, b *mem.Mem) docState {
	t.Helper()
	r, _ := remoteState(t, b, key)
	for i, s := range ss {
		if l, _ := localState(t, s, key); l != r {
			t.Fatalf("%s: store %d holds %s, the backend %s", key, i, l.id, r.id)
		}
	}
	return r
}

// TestManualSiblings: under the manual policy, two nodes that wrote the
// same key concurrently both end up holding the two versions as siblings
// (the backend holds the same sibling set), rounds over that state do
// nothing, a third concurrent write joins the set, and a resolution made on
// one node reaches every node and ends the conflict there.
func TestManualSiblings(t *testing.T) {
	b := mem.New("b")
	a, c, d := openStore(t, "a"), openStore(t, "c"), openStore(t, "d")
	ea, ec, ed := newEngine(t, a, b, manualPolicy), newEngine(t, c, b, manualPolicy), newEngine(t, d, b, manualPolicy)
	va := put(t, a, "x", `{"from":"a"}`)
	vc := put(t, c, "x", `{"from":"c"}`)
	vd := put(t, d, "x", `{"from":"d"}`) // d stays offline for now

	runRound(t, ea)
	if st := runRound(t, ec); st.Conflicts != 1 || st.Siblings != 1 || st.Losers != 0 {
		t.Fatalf("c's round: %+v, want one conflict kept as siblings", st)
	}
	converge(t, 4, ea, ec)
	sameEverywhere(t, "x", []*store.Store{a, c}, b)
	for name, s := range map[string]*store.Store{"a": a, "c": c} {
		if got, want := siblingIDs(t, s, "x"), sortedIDs(va, vc); !slices.Equal(got, want) {
			t.Fatalf("%s holds siblings %v, want %v", name, got, want)
		}
	}
	quiet(t, ea, ec)

	// A write that has not seen the siblings is refused, naming them.
	for _, pre := range []doc.Precondition{{}, {IfMatch: []string{"*"}}} {
		_, err := a.Put(bg, tenant, "x", []byte(`{"blind":1}`), pre)
		var se *doc.SiblingsError
		if fault.ClassOf(err) != fault.Conflict || !errors.As(err, &se) || len(se.Siblings) != 2 {
			t.Fatalf("blind put (%v): %v, want a conflict naming 2 siblings", pre, err)
		}
	}
	if _, err := a.Put(bg, tenant, "x", []byte(`{}`), doc.Precondition{IfMatch: []string{`"0123"`}}); fault.ClassOf(err) != fault.PreconditionFailed {
		t.Fatalf("put with a stale If-Match: %v, want precondition failed", err)
	}
	if _, err := a.Delete(bg, tenant, "x", doc.Precondition{}); fault.ClassOf(err) != fault.Conflict {
		t.Fatalf("blind delete: %v, want a conflict", err)
	}

	// A third concurrent version joins the set rather than deciding it.
	if st := runRound(t, ed); st.Conflicts != 1 || st.Siblings != 1 {
		t.Fatalf("d's round: %+v, want its write to join the siblings", st)
	}
	converge(t, 4, ea, ec, ed)
	sameEverywhere(t, "x", []*store.Store{a, c, d}, b)
	if got, want := siblingIDs(t, c, "x"), sortedIDs(va, vc, vd); !slices.Equal(got, want) {
		t.Fatalf("siblings %v, want %v", got, want)
	}
	quiet(t, ea, ec, ed)
	for name, s := range map[string]*store.Store{"a": a, "d": d} {
		n := 0
		for rec, err := range s.Siblings(bg, tenant, store.ListOptions{}) {
			if err != nil || rec.Key != "x" {
				t.Fatalf("%s: open siblings listed %q, %v", name, rec.Key, err)
			}
			n++
		}
		if n != 1 {
			t.Fatalf("%s: %d keys with open siblings, want 1", name, n)
		}
	}

	// A person on c chooses a's version: a new version over the set.
	res, err := c.Put(bg, tenant, "x", []byte(`{"from":"a"}`), doc.Precondition{IfMatch: []string{va.ETag}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []store.Record{va, vc, vd} {
		if o := res.Version.Compare(&v.Version); o != doc.After {
			t.Fatalf("the resolution is %v sibling %s, want after", o, v.ETag)
		}
	}
	converge(t, 4, ec, ea, ed)
	got := sameEverywhere(t, "x", []*store.Store{a, c, d}, b)
	if got.id != res.Version.ID() || got.body != `{"from":"a"}` {
		t.Fatalf("after the resolution every node holds %+v, want %s", got, res.Version.ID())
	}
	quiet(t, ea, ec, ed)
	for name, s := range map[string]*store.Store{"a": a, "c": c, "d": d} {
		for rec, err := range s.Siblings(bg, tenant, store.ListOptions{}) {
			t.Fatalf("%s: still lists open siblings: %q, %v", name, rec.Key, err)
		}
		// The siblings not kept are in the conflict history of every
		// node: the one that resolved and those that downloaded it.
		var lost []doc.ID
		for rec, err := range s.Conflicts(bg, tenant, "x") {
			if err != nil {
				t.Fatal(err)
			}
			if rec.Winner == res.Version.ID() {
				lost = append(lost, rec.Loser.ID())
			}
		}
		slices.SortFunc(lost, func(a, b doc.ID) int { return slices.Compare(a[:], b[:]) })
		if want := sortedIDs(vc, vd); !slices.Equal(lost, want) {
			t.Errorf("%s: history holds %v for the resolution, want c's and d's versions %v", name, lost, want)
		}
	}
}

// TestSiblingsBulkWriteReplaces: PutBatch is unconditional, so it replaces
// open siblings, and both go to the history.
func TestSiblingsBulkWriteReplaces(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	ea, ec := newEngine(t, a, b, manualPolicy), newEngine(t, c, b, manualPolicy)
	put(t, a, "x", `{"from":"a"}`)
	put(t, c, "x", `{"from":"c"}`)
	converge(t, 4, ea, ec)
	recs, err := a.PutBatch(bg, tenant, []store.Item{{Key: "x", Body: []byte(`{"bulk":1}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Version.Siblings {
		t.Fatal("the bulk write is a sibling set")
	}
	n := 0
	for _, err := range a.Conflicts(bg, tenant, "x") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("history holds %d versions, want both siblings", n)
	}
	converge(t, 4, ea, ec)
	if l, _ := localState(t, c, "x"); l.body != `{"bulk":1}` {
		t.Fatalf("c holds %+v", l)
	}
}
