package reconcile

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// cand derives a candidate from parent (nil for a first write); an empty
// body makes a tombstone.
func cand(parent *Candidate, node uint64, ms int64, body string) Candidate {
	var pv *doc.Version
	if parent != nil {
		pv = &parent.Version
	}
	v := doc.Derive(pv, node, at(ms), []byte(body), body == "")
	if body == "" {
		return Candidate{Version: v}
	}
	return Candidate{Version: v, Body: []byte(body)}
}

var (
	mBase = cand(nil, nodeA, 1, `{"title":"t","tags":["a"],"meta":{"x":1,"y":1},"n":1}`)
	// mA and mB change different fields; mC changes the title differently.
	mA = cand(&mBase, nodeA, 2, `{"title":"T","tags":["a"],"meta":{"x":2,"y":1},"n":1}`)
	mB = cand(&mBase, nodeB, 3, `{"title":"t","tags":["a","b"],"meta":{"x":1,"y":2},"n":1,"new":true}`)
	mC = cand(&mBase, nodeB, 3, `{"title":"C","tags":["a"],"meta":{"x":1,"y":1},"n":1}`)
	// mDel deletes concurrently with mA; mDel2 is another concurrent delete.
	mDel  = cand(&mBase, nodeB, 4, "")
	mDel2 = cand(&mA, nodeA, 2, "")
	// mSame writes mA's body concurrently with it.
	mSame = cand(&mBase, nodeB, 1, string(mA.Body))
)

func TestResolveTable(t *testing.T) {
	lww, _ := ParsePolicy("lww")
	merge, _ := ParsePolicy("merge")
	mergeManual, _ := ParsePolicy("merge/manual")
	manual, _ := ParsePolicy("manual")
	tests := []struct {
		name     string
		p        Policy
		a, b     Candidate
		anc      *Candidate
		outcome  Outcome
		body     string     // the result's body ("" for a tombstone); unchecked for Siblings
		tomb     bool       // the result is a tombstone
		loser    *Candidate // for Picked
		siblings []Candidate
		reason   string // a substring of Reason
	}{
		{name: "same version", p: lww, a: mA, b: mA, outcome: Ordered, body: string(mA.Body)},
		{name: "dominated", p: merge, a: mBase, b: mA, outcome: Ordered, body: string(mA.Body)},
		{name: "dominated delete", p: manual, a: mA, b: mDel2, outcome: Ordered, tomb: true},
		{name: "lww: higher HLC wins", p: lww, a: mA, b: mB, outcome: Picked, body: string(mB.Body), loser: &mA},
		{name: "lww: later update beats delete", p: lww, a: mDel2, b: mB, outcome: Picked, body: string(mB.Body), loser: &mDel2},
		{name: "lww: later delete beats update", p: lww, a: mA, b: mDel, outcome: Picked, tomb: true, loser: &mA},
		{name: "concurrent deletes agree", p: manual, a: mDel, b: mDel2, outcome: Merged, tomb: true, reason: "same content"},
		{name: "concurrent identical writes agree", p: lww, a: mA, b: mSame, outcome: Merged, body: string(mA.Body), reason: "same content"},
		{name: "merge: different fields", p: merge, a: mA, b: mB, anc: &mBase, outcome: Merged,
			body: `{"meta":{"x":2,"y":2},"n":1,"new":true,"tags":["a","b"],"title":"T"}`},
		{name: "merge: same field → lww", p: merge, a: mA, b: mC, anc: &mBase, outcome: Picked, body: string(mC.Body), loser: &mA,
			reason: `field "/title" changed differently on both sides`},
		{name: "merge: same field → manual", p: mergeManual, a: mA, b: mC, anc: &mBase, outcome: Siblings,
			siblings: []Candidate{mC, mA}, reason: "kept siblings"},
		{name: "merge: no ancestor → lww", p: merge, a: mA, b: mB, outcome: Picked, body: string(mB.Body), loser: &mA, reason: "no common ancestor"},
		{name: "merge: ancestor not common → lww", p: merge, a: mA, b: mB, anc: &mA, outcome: Picked, body: string(mB.Body), loser: &mA, reason: "not a common ancestor"},
		{name: "merge: tombstone ancestor → lww", p: merge, a: mA, b: mB, anc: &mDel, outcome: Picked, body: string(mB.Body), loser: &mA, reason: "ancestor is a tombstone"},
		{name: "merge: delete vs update → lww", p: merge, a: mA, b: mDel, anc: &mBase, outcome: Picked, tomb: true, loser: &mA, reason: "a delete against an update"},
		{name: "manual: siblings, lww winner first", p: manual, a: mA, b: mB, outcome: Siblings, siblings: []Candidate{mB, mA}},
		{name: "equal vectors: the lww winner, unchanged", p: merge, a: mA, b: eqVec(mA, `{"other":1}`), outcome: Picked,
			body: `{"other":1}`, loser: &mA, reason: "equal vectors"},
	}
	for _, tt := range tests {
		for _, swap := range []bool{false, true} {
			a, b := tt.a, tt.b
			if swap {
				a, b = b, a
			}
			got, err := Resolve(tt.p, a, b, tt.anc)
			if err != nil {
				t.Errorf("%s (swap %v): Resolve: %v", tt.name, swap, err)
				continue
			}
			checkResolution(t, tt.name, got, tt.outcome, tt.body, tt.tomb, tt.loser, tt.siblings, tt.reason)
		}
	}
}

// eqVec is c's version with another body: the same vector, another ID.
func eqVec(c Candidate, body string) Candidate {
	v := c.Version
	v.Hash = doc.HashBody([]byte(body))
	v.HLC++
	return Candidate{Version: v, Body: []byte(body)}
}

func checkResolution(t *testing.T, name string, got Resolution, outcome Outcome, body string, tomb bool, loser *Candidate, sibs []Candidate, reason string) {
	t.Helper()
	if got.Outcome != outcome {
		t.Errorf("%s: Outcome = %v (%q), want %v", name, got.Outcome, got.Reason, outcome)
		return
	}
	if !strings.Contains(got.Reason, reason) {
		t.Errorf("%s: Reason = %q, want it to contain %q", name, got.Reason, reason)
	}
	if outcome == Siblings {
		if len(got.Siblings) != len(sibs) {
			t.Fatalf("%s: %d siblings, want %d", name, len(got.Siblings), len(sibs))
		}
		for i := range sibs {
			if got.Siblings[i].Version.ID() != sibs[i].Version.ID() {
				t.Errorf("%s: sibling %d = %s, want %s", name, i, got.Siblings[i].Body, sibs[i].Body)
			}
		}
		return
	}
	if string(got.Result.Body) != body || got.Result.Version.Tombstone != tomb {
		t.Errorf("%s: Result = %s (tombstone %v), want %s (tombstone %v)", name, got.Result.Body, got.Result.Version.Tombstone, body, tomb)
	}
	if err := got.Result.check(); err != nil {
		t.Errorf("%s: Result: %v", name, err)
	}
	switch {
	case loser == nil && got.Loser != nil:
		t.Errorf("%s: Loser = %s, want none", name, got.Loser.Body)
	case loser != nil && (got.Loser == nil || got.Loser.Version.ID() != loser.Version.ID()):
		t.Errorf("%s: Loser = %v, want %s", name, got.Loser, loser.Body)
	}
}

func TestResolveVersion(t *testing.T) {
	// The result of a real conflict: pointwise-maximum vector, the larger
	// HLC, the winner's writer, the winner as parent, the body's hash.
	got, err := Resolve(Policy{Strategy: Merge}, mA, mB, &mBase)
	if err != nil {
		t.Fatal(err)
	}
	v := got.Result.Version
	want := doc.Version{
		Vector: doc.Vector{{Replica: nodeA, Counter: 2}, {Replica: nodeB, Counter: 1}},
		HLC:    mB.Version.HLC,
		Writer: nodeB,
		Parent: mB.Version.ID(),
		Hash:   doc.HashBody(got.Result.Body),
	}
	if v.ID() != want.ID() {
		t.Errorf("Result.Version = %+v, want %+v", v, want)
	}
}

func TestResolveErrors(t *testing.T) {
	bad := mA
	bad.Body = []byte(`{"title":"tampered"}`)
	tombWithBody := mDel
	tombWithBody.Body = []byte(`{}`)
	tests := []struct {
		name string
		p    Policy
		a, b Candidate
		anc  *Candidate
		want fault.Class
	}{
		{"unknown strategy", Policy{Strategy: 7}, mA, mB, nil, fault.Invalid},
		{"merge falling back to merge", Policy{Strategy: Merge, Fallback: Merge}, mA, mB, nil, fault.Invalid},
		{"body does not match its hash", Policy{}, bad, mB, nil, fault.Corruption},
		{"ancestor does not match its hash", Policy{}, mA, mB, &bad, fault.Corruption},
		{"tombstone with a body", Policy{}, mA, tombWithBody, nil, fault.Corruption},
	}
	for _, tt := range tests {
		_, err := Resolve(tt.p, tt.a, tt.b, tt.anc)
		if got := fault.ClassOf(err); got != tt.want {
			t.Errorf("%s: Resolve error %v (class %v), want class %v", tt.name, err, got, tt.want)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	for _, s := range []string{"lww", "merge", "merge/manual", "manual"} {
		p, err := ParsePolicy(s)
		if err != nil || p.String() != s || p.Validate() != nil {
			t.Errorf("ParsePolicy(%q) = %v, %v; String %q", s, p, err, p.String())
		}
	}
	if p, _ := ParsePolicy("merge/lww"); p.String() != "merge" {
		t.Errorf("ParsePolicy(merge/lww).String() = %q, want merge", p.String())
	}
	if (Policy{}).String() != "lww" {
		t.Errorf("the zero Policy is %q, want lww", Policy{}.String())
	}
	_, err := ParsePolicy("newest")
	if !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), `"newest"`) {
		t.Errorf("ParsePolicy(newest) error = %v, want an invalid-class error naming it", err)
	}
	for o, want := range map[Outcome]string{Ordered: "ordered", Picked: "picked", Merged: "merged", Siblings: "siblings", 9: "unknown"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", o, got, want)
		}
	}
}

func TestMergeJSONTable(t *testing.T) {
	tests := []struct {
		base, a, b string
		want       string // "" when it does not merge
		path       string // the conflict's path when it does not
	}{
		{`{"a":1}`, `{"a":1}`, `{"a":1}`, `{"a":1}`, ""},
		{`{"a":1}`, `{"a":2}`, `{"a":1}`, `{"a":2}`, ""},
		{`{"a":1}`, `{"a":2}`, `{"a":2}`, `{"a":2}`, ""},
		{`{"a":1}`, `{"a":2}`, `{"a":3}`, "", "/a"},
		{`{"a":1}`, `{}`, `{"a":1,"b":2}`, `{"b":2}`, ""},
		{`{"a":1}`, `{}`, `{"a":2}`, "", "/a"},
		{`{}`, `{"a":1}`, `{"a":1}`, `{"a":1}`, ""},
		{`{}`, `{"a":1}`, `{"a":2}`, "", "/a"},
		{`{"o":{"x":1,"y":1}}`, `{"o":{"x":2,"y":1}}`, `{"o":{"x":1,"y":2}}`, `{"o":{"x":2,"y":2}}`, ""},
		{`{"o":{"x":1}}`, `{"o":{"x":2}}`, `{"o":[1]}`, "", "/o"},
		{`{"l":[1]}`, `{"l":[1,2]}`, `{"l":[0,1]}`, "", "/l"},
		{`{"a/b~":1}`, `{"a/b~":2}`, `{"a/b~":3}`, "", "/a~1b~0"},
		{`{"s":"<&>"}`, `{"s":"<&>","t":"\u00e9\n"}`, `{"s":"<&>"}`, `{"s":"<&>","t":"é\n"}`, ""},
		{`{"n":1}`, `{"n":1.0}`, `{"n":1}`, `{"n":1.0}`, ""},
		{`1`, `2`, `3`, "", ""},
		{`[1]`, `[1]`, `[2]`, `[2]`, ""},
		// A surrogate pair is one character, kept; escaped quotes and
		// backslashes are no escapes of a surrogate.
		{`{}`, `{"e":"\ud83d\ude00"}`, `{"b":"\\ud800\""}`, `{"b":"\\ud800\"","e":"😀"}`, ""},
	}
	for _, tt := range tests {
		for _, swap := range []bool{false, true} {
			a, b := tt.a, tt.b
			if swap {
				a, b = b, a
			}
			got, err := MergeJSON([]byte(tt.base), []byte(a), []byte(b))
			var c *MergeConflict
			switch {
			case tt.want != "" && (err != nil || string(got) != tt.want):
				t.Errorf("MergeJSON(%s, %s, %s) = %s, %v; want %s", tt.base, a, b, got, err, tt.want)
			case tt.want == "" && !errors.As(err, &c):
				t.Errorf("MergeJSON(%s, %s, %s) = %s, %v; want a *MergeConflict", tt.base, a, b, got, err)
			case tt.want == "" && c.Path != tt.path:
				t.Errorf("MergeJSON(%s, %s, %s): conflict at %q, want %q", tt.base, a, b, c.Path, tt.path)
			case tt.want == "" && !errors.Is(err, fault.ErrConflict):
				t.Errorf("MergeJSON(%s, %s, %s): error %v is not of class conflict", tt.base, a, b, err)
			}
		}
	}
	for _, in := range [][3]string{{`{`, `{}`, `{}`}, {`{}`, `{} {}`, `{}`}, {`{}`, `{}`, ``},
		// What the canonical output could not keep: an unpaired surrogate
		// escape, in a value or a name, and a name given twice.
		{`{"s":"\ud800"}`, `{"s":"\ud800","a":1}`, `{"s":"\ud800","b":1}`},
		{`{"k\ud800":1,"k\udbff":2}`, `{"k\ud800":1,"k\udbff":2,"a":1}`, `{"k\ud800":1,"k\udbff":2,"b":1}`},
		{`{}`, `{"a":["x\udc00y"]}`, `{"b":1}`},
		{`{}`, `{"a":"\ud83d\u0041"}`, `{"b":1}`},
		{`{"d":1,"d":2}`, `{"d":1,"d":2,"a":1}`, `{"d":1,"d":2,"b":1}`},
		{`{}`, `{"o":{"d":1,"d":1}}`, `{"b":1}`},
	} {
		_, err := MergeJSON([]byte(in[0]), []byte(in[1]), []byte(in[2]))
		if !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("MergeJSON(%q, %q, %q) error = %v, want class invalid", in[0], in[1], in[2], err)
		}
	}
}

// TestMergeBounded: a merge whose result is over the policy's MaxBytes is
// not made; the fallback decides.
func TestMergeBounded(t *testing.T) {
	merge, _ := ParsePolicy("merge")
	merged, err := Resolve(merge, mA, mB, &mBase)
	if err != nil || merged.Outcome != Merged {
		t.Fatalf("unbounded: %v, %v", merged.Outcome, err)
	}
	merge.MaxBytes = int64(len(merged.Result.Body))
	if got, err := Resolve(merge, mA, mB, &mBase); err != nil || got.Outcome != Merged {
		t.Fatalf("at the bound: %v, %v", got.Outcome, err)
	}
	merge.MaxBytes--
	got, err := Resolve(merge, mA, mB, &mBase)
	if err != nil {
		t.Fatal(err)
	}
	checkResolution(t, "over the bound", got, Picked, string(mB.Body), false, &mA, nil, "over the limit of")
}

func TestAppendString(t *testing.T) {
	got := appendString(nil, "a\"\\\x01\x7f\xff\u2028")
	if want := []byte(`"a\"\\\u0001` + "\x7f\ufffd\u2028" + `"`); !bytes.Equal(got, want) {
		t.Errorf("appendString = %q, want %q", got, want)
	}
}

func TestGuard(t *testing.T) {
	tests := []struct {
		g             Guard
		live, deletes int
		want          bool
	}{
		{DefaultGuard, 10000, 0, false},
		{DefaultGuard, 10000, 2500, false},
		{DefaultGuard, 10000, 2501, true},
		{DefaultGuard, 20, 1000, false}, // at the floor
		{DefaultGuard, 20, 1001, true},
		{DefaultGuard, 0, 1001, true}, // an empty tenant: any share is too much
		{Guard{MaxShare: 1}, 100, 100, false},
		{Guard{MaxShare: 1}, 100, 101, true},
		{Guard{}, 100, 1, true}, // the zero Guard allows no deletion
	}
	for _, tt := range tests {
		if got := tt.g.Stop(tt.live, tt.deletes); got != tt.want {
			t.Errorf("%+v.Stop(%d, %d) = %v, want %v", tt.g, tt.live, tt.deletes, got, tt.want)
		}
	}
	for _, g := range []Guard{{MaxShare: -0.1}, {MaxShare: 1.5}, {MaxShare: 0.5, Floor: -1}} {
		if err := g.Validate(); !errors.Is(err, fault.ErrConfig) {
			t.Errorf("%+v.Validate() = %v, want a config-class error", g, err)
		}
	}
	if err := DefaultGuard.Validate(); err != nil {
		t.Errorf("DefaultGuard.Validate() = %v", err)
	}
}
