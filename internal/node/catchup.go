package node

import (
	"slices"

	"github.com/cairnstore/cairn/internal/reconcile"
)

// catchingUpWith returns what the document service asks for the engines a
// tenant is catching up with (docs.New): nil without engines.
func (r *replicator) catchingUpWith() func(tenant string) []*reconcile.Engine {
	if r == nil || len(r.engines) == 0 {
		return nil
	}
	return r.catchingUp
}

// catchingUp returns the engines tenant is catching up with.
func (r *replicator) catchingUp(tenant string) []*reconcile.Engine {
	var es []*reconcile.Engine
	for _, e := range r.engines {
		if e.CatchingUp(tenant) {
			es = append(es, e)
		}
	}
	return es
}

// catchingUpAtStart returns, sorted, the tenants /readyz waits for: those
// the engines found catching up when the node started and still are.
func (n *Node) catchingUpAtStart() []string {
	if n.repl == nil {
		return nil
	}
	var ts []string
	for _, e := range n.repl.engines {
		ts = append(ts, e.CatchingUpAtStart()...)
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}
