package reconcile

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/store"
)

func mergeEngines(t *testing.T, pol Policy) (a, c *store.Store, ea, ec *Engine, b *mem.Mem) {
	t.Helper()
	b = mem.New("b")
	a, c = openStore(t, "a"), openStore(t, "c")
	withPolicy := func(cfg *Config) { cfg.PolicyFor = func(string) Policy { return pol } }
	return a, c, newEngine(t, a, b, withPolicy), newEngine(t, c, b, withPolicy), b
}

func jsonOf(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return m
}

// TestMergeWithAncestor: two nodes edit different fields of one document
// concurrently under the merge policy; the engine keeps the base's body,
// passes it to Resolve, and both fields end up on both nodes and the
// backend.
func TestMergeWithAncestor(t *testing.T) {
	a, c, ea, ec, b := mergeEngines(t, Policy{Strategy: Merge, Fallback: LWW})
	put(t, a, "x", `{"a":1,"b":1,"keep":"same"}`)
	converge(t, 3, ea, ec)
	if st, ok, err := c.SyncState("b", tenant, "x"); err != nil || !ok || string(st.Body) != `{"a":1,"b":1,"keep":"same"}` {
		t.Fatalf("c's base of x: %+v, %v, %v; want the body kept as the ancestor", st, ok, err)
	}

	put(t, a, "x", `{"a":2,"b":1,"keep":"same"}`)
	put(t, c, "x", `{"a":1,"b":2,"keep":"same"}`)
	runRound(t, ea) // a's edit reaches the backend
	st := runRound(t, ec)
	if st.Conflicts != 1 || st.Losers != 0 || st.Siblings != 0 {
		t.Fatalf("c's round: %+v; want one conflict merged without a loser", st)
	}
	converge(t, 4, ea, ec)
	want := map[string]any{"a": 2.0, "b": 2.0, "keep": "same"}
	la, _ := localState(t, a, "x")
	lc, _ := localState(t, c, "x")
	r, _ := remoteState(t, b, "x")
	for who, s := range map[string]docState{"a": la, "c": lc, "backend": r} {
		if got := jsonOf(t, s.body); !reflect.DeepEqual(got, want) {
			t.Errorf("%s holds %s, want both edits %v", who, s.body, want)
		}
	}
	if la != lc || la != r {
		t.Fatalf("not converged: a %+v, c %+v, backend %+v", la, lc, r)
	}
	// The merged version is the new base, with its body, on both nodes.
	for _, s := range []*store.Store{a, c} {
		st, _, _ := s.SyncState("b", tenant, "x")
		if st.Base.ID() != la.id || jsonOf(t, string(st.Body))["b"] != 2.0 {
			t.Fatalf("base after the merge: %+v", st)
		}
	}
	for _, e := range []*Engine{ea, ec} {
		if st := runRound(t, e); st.Applied() != 0 {
			t.Fatalf("after convergence: %+v", st)
		}
	}
}

// TestMergeSameFieldFallsBack: the same field changed on both sides cannot
// merge; the policy's fallback decides (lww: one wins, the other is in the
// conflict history; manual: siblings, left for a person).
func TestMergeSameFieldFallsBack(t *testing.T) {
	t.Run("lww", func(t *testing.T) {
		a, c, ea, ec, b := mergeEngines(t, Policy{Strategy: Merge, Fallback: LWW})
		put(t, a, "x", `{"a":1,"b":1}`)
		converge(t, 3, ea, ec)
		wa := put(t, a, "x", `{"a":2,"b":1}`)
		wc := put(t, c, "x", `{"a":3,"b":1}`)
		win, lose := wc, wa // the clocks are the nodes' own: ask which wins
		if wins(&wa.Version, &wc.Version) {
			win, lose = wa, wc
		}
		runRound(t, ea)
		st := runRound(t, ec)
		if st.Conflicts != 1 || st.Losers != 1 {
			t.Fatalf("c's round: %+v; want one conflict with a loser", st)
		}
		converge(t, 4, ea, ec)
		la, _ := localState(t, a, "x")
		r, _ := remoteState(t, b, "x")
		if la.body != string(win.Body) || r != la {
			t.Fatalf("a holds %+v, backend %+v; want the last writer's %s", la, r, win.Body)
		}
		var reasons []string
		for cr, err := range c.Conflicts(bg, tenant, "x") {
			if err != nil {
				t.Fatal(err)
			}
			reasons = append(reasons, cr.Reason)
			if string(cr.Body) != string(lose.Body) || cr.Loser.ID() != lose.Version.ID() {
				t.Fatalf("conflict history: %+v; want the loser %s", cr, lose.Body)
			}
		}
		if len(reasons) != 1 || reasons[0] != `merge: field "/a" changed differently on both sides; last writer wins` {
			t.Fatalf("conflict reasons %q", reasons)
		}
	})
	t.Run("manual", func(t *testing.T) {
		a, c, ea, ec, _ := mergeEngines(t, Policy{Strategy: Merge, Fallback: Manual})
		put(t, a, "x", `{"a":1}`)
		converge(t, 3, ea, ec)
		put(t, a, "x", `{"a":2}`)
		put(t, c, "x", `{"a":3}`)
		runRound(t, ea)
		if st := runRound(t, ec); st.Conflicts != 1 || st.Siblings != 1 || st.Losers != 0 {
			t.Fatalf("c's round: %+v; want siblings", st)
		}
		// The sibling set is the new base, without a body: it is not a
		// document a later merge could start from.
		if st, ok, err := c.SyncState("b", tenant, "x"); err != nil || !ok || !st.Base.Siblings || st.Body != nil {
			t.Fatalf("c's base after the siblings: %+v, %v, %v; want the set, no body", st, ok, err)
		}
	})
}

// TestNoAncestorKeptForOtherPolicies: bases of lww tenants carry no body.
func TestNoAncestorKeptForOtherPolicies(t *testing.T) {
	b := mem.New("b")
	a := openStore(t, "a")
	e := newEngine(t, a, b, nil)
	put(t, a, "x", `{"a":1}`)
	runRound(t, e)
	if st, ok, err := a.SyncState("b", tenant, "x"); err != nil || !ok || st.Body != nil {
		t.Fatalf("lww base: %+v, %v, %v; want no body", st, ok, err)
	}
}
