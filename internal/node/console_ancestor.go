package node

import (
	"context"

	"github.com/cairnstore/cairn/internal/console"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// ancestorCandidate is a version whose body the node kept.
type ancestorCandidate struct {
	v      doc.Version
	body   []byte
	source string
}

// Ancestor finds a common ancestor of key's open siblings among the
// versions whose bodies the node still holds: each backend's base (kept
// for tenants whose policy is merge: package reconcile, ancestor.go) and,
// when the siblings share a parent, that parent in the conflict history.
// A candidate counts only when it is live, its body matches its hash and
// every sibling descends from it; of several, the nearest (one that
// descends from the others) is returned. The set's ETag comes back with
// it, so the console shows it only against the set it belongs to.
func (v consoleView) Ancestor(ctx context.Context, tenant, key string) (console.Ancestor, bool, error) {
	rec, err := v.n.store.Get(ctx, tenant, key)
	if err != nil {
		return console.Ancestor{}, false, err
	}
	if !rec.Version.Siblings {
		return console.Ancestor{}, false, fault.New(fault.NotFound, fault.Context{Op: "node.ancestor", Tenant: tenant, Key: key}, "the document has no open siblings")
	}
	sibs, err := doc.DecodeSiblings(rec.Body)
	if err != nil {
		return console.Ancestor{}, false, fault.E(fault.Corruption, fault.Context{Op: "node.ancestor", Tenant: tenant, Key: key}, err)
	}
	var cands []ancestorCandidate
	if r := v.n.repl; r != nil {
		for _, e := range r.engines {
			st, ok, err := v.n.store.SyncState(e.Backend(), tenant, key)
			if err != nil {
				return console.Ancestor{}, false, err
			}
			if ok && st.Body != nil {
				cands = append(cands, ancestorCandidate{st.Base, st.Body, "the base recorded with backend " + e.Backend()})
			}
		}
	}
	if parent, shared := sharedParent(sibs); shared {
		for c, err := range v.n.store.Conflicts(ctx, tenant, key) {
			if err != nil {
				return console.Ancestor{}, false, err
			}
			if c.Loser.ID() == parent {
				cands = append(cands, ancestorCandidate{c.Loser, c.Body, "the conflict history"})
				break
			}
		}
	}
	best := nearestCommon(sibs, cands)
	if best == nil {
		return console.Ancestor{}, false, nil
	}
	return console.Ancestor{SetETag: rec.ETag, ETag: best.v.ETag(), Writer: best.v.Writer, Time: best.v.HLC.Time(),
		Source: best.source, Body: best.body}, true, nil
}

// sharedParent returns the parent every sibling was derived from, if
// they share one.
func sharedParent(sibs []doc.Sibling) (doc.ID, bool) {
	p := sibs[0].Version.Parent
	for _, s := range sibs[1:] {
		if s.Version.Parent != p {
			return doc.ID{}, false
		}
	}
	return p, !p.IsZero()
}

// nearestCommon returns the candidate that is a live common ancestor of
// every sibling and descends from every other such candidate; nil if
// none is.
func nearestCommon(sibs []doc.Sibling, cands []ancestorCandidate) *ancestorCandidate {
	var best *ancestorCandidate
	for i := range cands {
		c := &cands[i]
		if c.v.Tombstone || c.v.Siblings || doc.HashBody(c.body) != c.v.Hash {
			continue
		}
		common := true
		for j := range sibs {
			common = common && descends(&sibs[j].Version, &c.v)
		}
		if common && (best == nil || descends(&c.v, &best.v)) {
			best = c
		}
	}
	return best
}

// descends reports whether v is anc or was derived from it (as the
// reconciler decides a common ancestor for its merges).
func descends(v, anc *doc.Version) bool {
	o := v.Compare(anc)
	return o == doc.After || (o == doc.Equal && v.ID() == anc.ID())
}
