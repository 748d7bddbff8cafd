package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Strategy is one way of resolving a conflict.
type Strategy uint8

const (
	LWW    Strategy = iota // last writer wins: higher HLC, then writer, then hash
	Merge                  // three-way JSON merge against the common ancestor
	Manual                 // keep both as siblings for a person to resolve
	numStrategies
)

var strategyNames = [numStrategies]string{LWW: "lww", Merge: "merge", Manual: "manual"}

func (s Strategy) String() string {
	if s < numStrategies {
		return strategyNames[s]
	}
	return fmt.Sprintf("strategy(%d)", uint8(s))
}

// Policy is a tenant's conflict policy. The zero Policy is last-writer-wins.
type Policy struct {
	Strategy Strategy
	// Fallback is what Merge does when it cannot merge (no ancestor, a
	// delete against an update, a field changed differently on both sides):
	// LWW or Manual. Ignored by the other strategies.
	Fallback Strategy
	// MaxBytes bounds a merged document: a merge whose result is larger
	// is not made (the fallback decides), so a merge never stores a
	// document that no write could. 0 means no bound. Nodes sharing a
	// backend need the same bound, as they need the same policy.
	MaxBytes int64
}

// ParsePolicy parses "lww", "merge" (falling back to lww), "merge/lww",
// "merge/manual" or "manual".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "lww":
		return Policy{Strategy: LWW}, nil
	case "merge", "merge/lww":
		return Policy{Strategy: Merge, Fallback: LWW}, nil
	case "merge/manual":
		return Policy{Strategy: Merge, Fallback: Manual}, nil
	case "manual":
		return Policy{Strategy: Manual}, nil
	}
	return Policy{}, fault.New(fault.Invalid, fault.Context{Op: "reconcile.parse_policy"},
		fmt.Sprintf("conflict policy %q: want lww, merge, merge/lww, merge/manual or manual", s))
}

// String is the form ParsePolicy reads.
func (p Policy) String() string {
	if p.Strategy == Merge && p.Fallback == Manual {
		return "merge/manual"
	}
	return p.Strategy.String()
}

// Validate reports a policy ParsePolicy could not have produced.
func (p Policy) Validate() error {
	if p.Strategy >= numStrategies || (p.Strategy == Merge && p.Fallback != LWW && p.Fallback != Manual) {
		return fault.New(fault.Invalid, fault.Context{Op: "reconcile.policy"},
			fmt.Sprintf("conflict policy {%v, fallback %v}: not a policy", p.Strategy, p.Fallback))
	}
	return nil
}

// Candidate is one version of a document with its body. A tombstone's body
// is empty.
type Candidate struct {
	Version doc.Version
	Body    []byte
}

// Outcome is how [Resolve] settled a pair.
type Outcome uint8

const (
	// Ordered: the two were not in conflict. One is the same as, or
	// causally dominates, the other, and Result is that one unchanged.
	Ordered Outcome = iota
	// Picked: last-writer-wins (the policy, or Merge's fallback) chose
	// Result; Loser is the other side, for the conflict history.
	Picked
	// Merged: Result is a new version whose body combines both sides: a
	// three-way merge, or two sides that wrote the same content.
	Merged
	// Siblings: both are kept (Manual, Merge's fallback, or a side that
	// already held open siblings): Result is the sibling set, a new
	// version whose body holds them all (doc.MakeSiblings), and Siblings
	// lists them.
	Siblings
)

var outcomeNames = [...]string{Ordered: "ordered", Picked: "picked", Merged: "merged", Siblings: "siblings"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Resolution is the result of [Resolve]. Its bodies may share memory with
// the candidates given to Resolve.
type Resolution struct {
	Outcome Outcome
	// Result is what both sides should hold.
	Result Candidate
	// Loser is, when Outcome is Picked, the version that lost; nil when its
	// content equals the result's (nothing was lost).
	Loser *Candidate
	// Siblings holds the kept versions when Outcome is Siblings (two or
	// more: a side that was a sibling set contributes its members): the
	// last-writer-wins winner first, so a reader that must show one shows
	// the same one on every node.
	Siblings []Candidate
	// Reason is a short phrase for logs, spans and the conflict history.
	Reason string
}

// Resolve settles two versions of a document under policy p. ancestor is a
// version both descend from (the base, typically), or nil; only Merge reads
// it. Resolve is a pure function of its arguments and is symmetric:
// Resolve(p, a, b, x) and Resolve(p, b, a, x) return the same resolution,
// byte for byte, so every node that resolves a conflict makes the same
// version. docs/design/reconcile.md explains how the result's version is made.
//
// Errors: an invalid policy (class fault.Invalid); a candidate whose body
// does not match its hash, or a tombstone with a body (fault.Corruption).
func Resolve(p Policy, a, b Candidate, ancestor *Candidate) (Resolution, error) {
	const op = "reconcile.resolve"
	if err := p.Validate(); err != nil {
		return Resolution{}, err
	}
	for _, c := range []*Candidate{&a, &b, ancestor} {
		if err := c.check(); err != nil {
			return Resolution{}, fault.E(fault.Corruption, fault.Context{Op: op}, err)
		}
	}
	// From here on only (w, l) are used, in last-writer-wins order, so the
	// result cannot depend on the order of the arguments.
	w, l := a, b
	if !wins(&a.Version, &b.Version) {
		w, l = b, a
	}
	wid, lid := w.Version.ID(), l.Version.ID()
	if wid == lid {
		return Resolution{Outcome: Ordered, Result: w, Reason: "same version"}, nil
	}
	switch w.Version.Compare(&l.Version) {
	case doc.After:
		return Resolution{Outcome: Ordered, Result: w, Reason: "one version dominates"}, nil
	case doc.Before:
		return Resolution{Outcome: Ordered, Result: l, Reason: "one version dominates"}, nil
	case doc.Equal:
		// Two different resolutions of overlapping conflicts can share a
		// vector (docs/design/reconcile.md). Widening cannot separate them, so
		// the winner is kept as it is: resolving again is a no-op.
		r := Resolution{Outcome: Picked, Result: w, Reason: "equal vectors: kept the last writer"}
		if !sameContent(&w, &l) {
			r.Loser = &l
		}
		return r, nil
	}
	if sameContent(&w, &l) {
		return joined(w, l, w.Body, w.Version.Tombstone, Merged, "both sides wrote the same content"), nil
	}
	if w.Version.Siblings || l.Version.Siblings {
		// Open siblings wait for a person whatever the policy says now
		// (it may have changed since they were kept): a concurrent version
		// joins them rather than deciding them.
		return siblings(w, l, "joined open siblings")
	}
	switch p.Strategy {
	case LWW:
		return pick(w, l, "last writer wins"), nil
	case Manual:
		return siblings(w, l, "manual policy")
	}
	body, why := merge(w, l, ancestor)
	if why == "" && p.MaxBytes > 0 && int64(len(body)) > p.MaxBytes {
		body, why = nil, fmt.Sprintf("the merged document would be %d bytes, over the limit of %d", len(body), p.MaxBytes)
	}
	if why == "" {
		return joined(w, l, body, false, Merged, "three-way merge"), nil
	}
	if p.Fallback == Manual {
		return siblings(w, l, "merge: "+why+"; kept siblings")
	}
	return pick(w, l, "merge: "+why+"; last writer wins"), nil
}

// merge tries the three-way merge of w and l; why says why it could not.
func merge(w, l Candidate, anc *Candidate) (body []byte, why string) {
	switch {
	case w.Version.Tombstone || l.Version.Tombstone:
		return nil, "a delete against an update"
	case anc == nil:
		return nil, "no common ancestor"
	case anc.Version.Tombstone:
		return nil, "the ancestor is a tombstone"
	case anc.Version.Siblings:
		return nil, "the ancestor is a sibling set"
	case !descends(&w.Version, &anc.Version) || !descends(&l.Version, &anc.Version):
		return nil, "the ancestor is not a common ancestor"
	}
	out, err := MergeJSON(anc.Body, w.Body, l.Body)
	if err != nil {
		var c *MergeConflict
		if errors.As(err, &c) {
			return nil, c.Error()
		}
		return nil, "not mergeable JSON: " + strings.TrimPrefix(err.Error(), "reconcile: ")
	}
	return out, ""
}

// joined is the resolution that carries body as a new version on top of
// both w and l. Everything in it is a function of (w, l, body):
//
//   - Vector: the pointwise maximum, so it dominates both and no more; no
//     node adds a counter of its own.
//   - HLC: the larger of the two (w's, since w won on HLC first); no node
//     reads its own clock.
//   - Writer: w's writer; Parent: w's ID (the version whose line it
//     continues; l's line is covered by the vector).
func joined(w, l Candidate, body []byte, tomb bool, o Outcome, why string) Resolution {
	v := doc.Version{
		Vector:    w.Version.Vector.Merge(l.Version.Vector),
		HLC:       max(w.Version.HLC, l.Version.HLC),
		Writer:    w.Version.Writer,
		Parent:    w.Version.ID(),
		Tombstone: tomb,
	}
	if tomb {
		body = nil
	}
	v.Hash = doc.HashBody(body)
	return Resolution{Outcome: o, Result: Candidate{Version: v, Body: body}, Reason: why}
}

func pick(w, l Candidate, why string) Resolution {
	r := joined(w, l, w.Body, w.Version.Tombstone, Picked, why)
	r.Loser = &l
	return r
}

// wins is doc.Version.Wins made total: two different versions with the same
// HLC, writer and hash (they differ in vector or parent) are ordered by ID.
func wins(a, b *doc.Version) bool {
	if a.Wins(b) {
		return true
	}
	if b.Wins(a) {
		return false
	}
	aid, bid := a.ID(), b.ID()
	return bytes.Compare(aid[:], bid[:]) > 0
}

// descends reports whether v is anc or a causal successor of it.
func descends(v, anc *doc.Version) bool {
	o := v.Compare(anc)
	return o == doc.After || (o == doc.Equal && v.ID() == anc.ID())
}

func sameContent(a, b *Candidate) bool {
	return a.Version.Tombstone == b.Version.Tombstone && a.Version.Hash == b.Version.Hash
}

// check verifies the body against the version (nil c is fine).
func (c *Candidate) check() error {
	if c == nil {
		return nil
	}
	if c.Version.Tombstone && len(c.Body) > 0 {
		return fmt.Errorf("reconcile: tombstone %s has a %d-byte body", c.Version.ID(), len(c.Body))
	}
	if doc.HashBody(c.Body) != c.Version.Hash {
		return fmt.Errorf("reconcile: body of version %s does not match its hash", c.Version.ID())
	}
	if c.Version.Siblings {
		return checkSiblings(c)
	}
	return nil
}
