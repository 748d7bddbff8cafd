package reconcile

import (
	"fmt"
	"math"

	"github.com/cairnstore/cairn/internal/fault"
)

// Guard is the mass-deletion guard: a round that would delete more than a
// share of a tenant's documents on a backend stops and asks for
// confirmation, because that is what a wiped bucket, a mistaken prefix or a
// runaway client looks like.
type Guard struct {
	// MaxShare is the largest share of live documents, in [0, 1], a round
	// may delete without confirmation.
	MaxShare float64
	// Floor is a number of deletions that never stops a round, so a small
	// tenant can delete a few of its few documents.
	Floor int
}

// DefaultGuard stops a round that deletes more than a quarter of a tenant's
// documents, once it deletes more than 1,000. The floor is that high
// because a small tenant whose clients delete often trips a quarter within
// one feed poll, and a guard stop holds every later deletion of the tenant
// until a round passes without one, which under steady deletes is never
// (a three-node run of the chaos load scenario stopped in its first second
// and never converged with a floor of 10); the guard is for what a node
// back from a long absence, or a restore's fallback, would delete at once.
var DefaultGuard = Guard{MaxShare: 0.25, Floor: 1000}

// Stop reports whether a round that deletes deletes of live documents (the
// tenant's live documents on the backend when the round began) must stop:
// when deletes is above both the floor and MaxShare of live. Deletions
// from an empty tenant are an unbounded share. A Guard with a share of 1
// stops only when a round plans more deletions than there are documents.
func (g Guard) Stop(live, deletes int) bool {
	if deletes <= g.Floor || deletes <= 0 {
		return false
	}
	return float64(deletes) > g.MaxShare*float64(max(live, 0))
}

// Validate reports a share outside [0, 1] or a negative floor.
func (g Guard) Validate() error {
	if math.IsNaN(g.MaxShare) || g.MaxShare < 0 || g.MaxShare > 1 || g.Floor < 0 {
		return fault.New(fault.Config, fault.Context{Op: "reconcile.guard"},
			fmt.Sprintf("mass-deletion guard: share %v must be in [0, 1] and floor %d not negative", g.MaxShare, g.Floor))
	}
	return nil
}
