package reconcile

import (
	"fmt"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// siblings keeps w and l (or, for a side that is already a sibling set, its
// members) as a sibling set: doc.MakeSiblings of their union, which is a
// function of the versions alone, so every node that keeps the same
// conflict makes the same set and no node resolves it again. Members that
// another member dominates drop out: a version that continued one
// sibling's line replaces it.
func siblings(w, l Candidate, why string) (Resolution, error) {
	var members []doc.Sibling
	for _, c := range [2]Candidate{w, l} {
		if !c.Version.Siblings {
			members = append(members, doc.Sibling{Version: c.Version, Body: c.Body})
			continue
		}
		sibs, err := doc.DecodeSiblings(c.Body) // checked by Resolve already
		if err != nil {
			return Resolution{}, fault.E(fault.Corruption, fault.Context{Op: "reconcile.resolve"}, err)
		}
		members = append(members, sibs...)
	}
	v, body, err := doc.MakeSiblings(members)
	if err != nil { // fewer than two left: cannot happen for concurrent w, l
		return Resolution{}, fault.E(fault.Unknown, fault.Context{Op: "reconcile.resolve"}, err)
	}
	kept, err := doc.DecodeSiblings(body)
	if err != nil {
		return Resolution{}, fault.E(fault.Corruption, fault.Context{Op: "reconcile.resolve"}, err)
	}
	r := Resolution{Outcome: Siblings, Result: Candidate{Version: v, Body: body}, Reason: why}
	for _, s := range kept {
		r.Siblings = append(r.Siblings, Candidate{Version: s.Version, Body: s.Body})
	}
	return r, nil
}

// checkSiblings verifies a sibling set's members: each body against its
// version's hash (the set's own hash was checked by the caller).
func checkSiblings(c *Candidate) error {
	sibs, err := doc.DecodeSiblings(c.Body)
	if err != nil {
		return err
	}
	for _, s := range sibs {
		if doc.HashBody(s.Body) != s.Version.Hash {
			return fmt.Errorf("reconcile: sibling %s of %s does not match its hash", s.Version.ID(), c.Version.ID())
		}
	}
	return nil
}
