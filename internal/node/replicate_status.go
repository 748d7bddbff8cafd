package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/reconcile"
	"github.com/cairnstore/cairn/internal/server"
)

func resultOf(st reconcile.Stats) *api.RoundResult {
	r := &api.RoundResult{
		Tenant: st.Tenant, Started: st.Started, DurationMS: float64(st.Duration) / float64(time.Millisecond),
		ResumedAfter: st.ResumedAfter, Scanned: st.Scanned, Applied: st.Applied(),
		Conflicts: st.Conflicts, Losers: st.Losers, Siblings: st.Siblings, Deletes: st.Deletes,
		Corrupt: st.Corrupt, Repaired: st.Repaired, Raced: st.Raced, BytesUp: st.BytesUp, BytesDown: st.BytesDown,
	}
	for a, c := range st.Actions {
		if c > 0 {
			if r.Actions == nil {
				r.Actions = map[string]int{}
			}
			r.Actions[reconcile.Action(a).String()] = c
		}
	}
	return r
}

// adminView is the node as the admin routes see it (server.Reconciler,
// server.Quarantine, server.Chaos).
type adminView struct{ n *Node }

var (
	_ server.Reconciler = adminView{}
	_ server.Quarantine = adminView{}
)

// ReconcileStatus implements server.Reconciler.
func (a adminView) ReconcileStatus() api.ReconcileStatus {
	n := a.n
	out := api.ReconcileStatus{Backends: []api.BackendStatus{}, CatchingUp: n.catchingUpAtStart(), Collector: n.collectorStatus()}
	if out.CatchingUp == nil {
		out.CatchingUp = []string{}
	}
	if n.repl != nil {
		for i, e := range n.repl.engines {
			bs := api.BackendStatus{Name: e.Backend(), Breaker: n.repl.policies[i].State().String(),
				LagSeconds: e.ReplicationLag().Seconds(), Tenants: []api.TenantProgress{}}
			now := time.Now()
			for tenant, p := range e.AllProgress() {
				tp := api.TenantProgress{Tenant: tenant, Running: p.Running, CatchingUp: p.CatchingUp, Downloaded: p.Downloaded,
					Cursor: p.Cursor, Scanned: p.Scanned, Estimate: p.Estimate}
				if p.Running {
					fillRunning(&tp, p, now)
				}
				if !p.Last.Started.IsZero() {
					tp.Last = resultOf(p.Last)
				}
				if p.LastErr != nil {
					tp.LastError = p.LastErr.Error()
				}
				if p.LastUploadErr != nil {
					tp.LastUploadError = p.LastUploadErr.Error()
				}
				tp.Held = e.Held(tenant)
				tp.Feed = feedStatus(e, tenant)
				bs.Tenants = append(bs.Tenants, tp)
			}
			slices.SortFunc(bs.Tenants, func(a, b api.TenantProgress) int { return strings.Compare(a.Tenant, b.Tenant) })
			out.Backends = append(out.Backends, bs)
		}
	}
	return out
}

// feedStatus is tenant's change feed on e, nil when the feed is off.
func feedStatus(e *reconcile.Engine, tenant string) *api.FeedStatus {
	fs, ok := e.FeedStatus(tenant)
	if !ok {
		return nil
	}
	out := &api.FeedStatus{Published: fs.Published, Pending: fs.Pending, Fallback: fs.Fallback, Peers: map[string]api.PeerFeed{}}
	if !fs.Polled.IsZero() {
		out.PolledAt = &fs.Polled
	}
	if fs.Error != nil {
		out.Error = fault.MessageOf(fs.Error)
	}
	for p, pf := range fs.Peers {
		ap := api.PeerFeed{Cursor: pf.Cursor, LagSeconds: pf.Lag.Seconds()}
		if !pf.Read.IsZero() {
			r := pf.Read
			ap.ReadAt = &r
		}
		out.Peers[p] = ap
	}
	return out
}

// fillRunning sets the fields of a round in progress: percent done from
// the keys scanned against the last whole round's size, and the ETA at
// the round's rate so far; neither once the round has scanned that size.
func fillRunning(tp *api.TenantProgress, p reconcile.Progress, now time.Time) {
	started := p.Started
	tp.Started, tp.ResumedAfter = &started, p.ResumedAfter
	if el := now.Sub(p.Started).Seconds(); el > 0 && p.Scanned > 0 {
		tp.KeysPerSecond = float64(p.Scanned) / el
	}
	if p.Estimate <= 0 || p.Scanned >= p.Estimate {
		// No size, or the tenant grew past the last round's: how far
		// the round is, and how long it has left, are not known.
		return
	}
	pct := 100 * float64(p.Scanned) / float64(p.Estimate)
	tp.PercentDone = &pct
	if left := p.Estimate - p.Scanned; left > 0 && tp.KeysPerSecond > 0 {
		eta := float64(left) / tp.KeysPerSecond
		tp.ETASeconds = &eta
	}
}

// RunReconcile implements server.Reconciler. With req.Wait the rounds run
// one after another, and a failed round's result carries its error;
// without it every selected engine is triggered for a pass over all its
// tenants.
func (a adminView) RunReconcile(ctx context.Context, req server.ReconcileRequest) (api.ReconcileRun, error) {
	n := a.n
	op := fault.Context{Op: "admin.reconcile.run"}
	if n.repl == nil || len(n.repl.engines) == 0 {
		return api.ReconcileRun{}, fault.New(fault.Conflict, op, "no backends configured (--backend)")
	}
	engines := n.repl.engines
	if req.Backend != "" {
		e, _ := n.repl.engine(req.Backend)
		if e == nil {
			return api.ReconcileRun{}, fault.New(fault.NotFound, op, fmt.Sprintf("no backend %q", req.Backend))
		}
		engines = []*reconcile.Engine{e}
	}
	if req.Tenant != "" {
		if err := servedTenant(ctx, engines, req.Tenant); err != nil {
			return api.ReconcileRun{}, err
		}
	}
	if !req.Wait && !req.Confirm {
		// A trigger needs no tenant list: each engine's pass finds its
		// tenants itself, without holding up this answer on a listing.
		for _, e := range engines {
			e.Trigger()
		}
		return api.ReconcileRun{Triggered: true}, nil
	}
	tenants := make([][]string, len(engines)) // per engine
	for i, e := range engines {
		tenants[i] = runTenants(ctx, e, req.Tenant)
		// A round run here and waited for takes its confirmation itself
		// (RunRoundConfirmed): given now, a round the engine starts
		// meanwhile could take it, and this one would report nothing done.
		if req.Confirm && (!req.Wait || req.Scrub) {
			for _, t := range tenants[i] {
				e.Confirm(t)
			}
		}
	}
	if !req.Wait {
		for _, e := range engines {
			e.Trigger()
		}
		return api.ReconcileRun{Triggered: true}, nil
	}
	out := api.ReconcileRun{Rounds: []api.RoundResult{}}
	for i, e := range engines {
		for _, t := range tenants[i] {
			run := e.RunRound
			switch {
			case req.Scrub:
				run = e.Scrub
			case req.Confirm:
				run = e.RunRoundConfirmed
			}
			st, err := run(ctx, t)
			if ctx.Err() != nil {
				return api.ReconcileRun{}, ctx.Err() // the client left
			}
			res := resultOf(st)
			res.Backend, res.Tenant = e.Backend(), t
			if err != nil {
				res.Error = err.Error()
				res.NeedsConfirm = errors.Is(err, reconcile.ErrNeedsConfirm)
			}
			out.Rounds = append(out.Rounds, *res)
		}
	}
	return out, nil
}

// servedTenant refuses a named tenant that no selected engine serves, so
// that a mistyped name is an error, not a round that writes the backend
// a layout for a tenant that does not exist. When that cannot be settled
// (a listing failed, or a backend cannot list its tenants), the name is
// let through, as it may be a tenant only the backend holds.
func servedTenant(ctx context.Context, engines []*reconcile.Engine, tenant string) error {
	sure := true
	for _, e := range engines {
		serves, certain := e.Serves(ctx, tenant)
		if serves {
			return nil
		}
		sure = sure && certain
	}
	if !sure {
		return nil
	}
	return fault.New(fault.NotFound, fault.Context{Op: "admin.reconcile.run", Tenant: tenant},
		fmt.Sprintf("no tenant %q: it is not configured, in the store, or in the backends reconciled", tenant))
}

// runTenants is the named tenant, or every tenant e serves: configured,
// in the store or in its backend (a backend that cannot be listed leaves
// the tenants known so far; the rounds then report its error).
func runTenants(ctx context.Context, e *reconcile.Engine, tenant string) []string {
	if tenant != "" {
		return []string{tenant}
	}
	ts, _ := e.Discover(ctx)
	return ts
}
