package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/reconcile"
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

// reconcileStatus serves GET /v1/admin/reconcile.
func (n *Node) reconcileStatus(w http.ResponseWriter, r *http.Request) {
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
				bs.Tenants = append(bs.Tenants, tp)
			}
			slices.SortFunc(bs.Tenants, func(a, b api.TenantProgress) int { return strings.Compare(a.Tenant, b.Tenant) })
			out.Backends = append(out.Backends, bs)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// fillRunning sets the fields of a round in progress: percent done from
// the keys scanned against the last whole round's size, and the ETA at
// the round's rate so far.
func fillRunning(tp *api.TenantProgress, p reconcile.Progress, now time.Time) {
	started := p.Started
	tp.Started, tp.ResumedAfter = &started, p.ResumedAfter
	if el := now.Sub(p.Started).Seconds(); el > 0 && p.Scanned > 0 {
		tp.KeysPerSecond = float64(p.Scanned) / el
	}
	if p.Estimate <= 0 {
		return
	}
	pct := min(99.9, 100*float64(p.Scanned)/float64(p.Estimate))
	tp.PercentDone = &pct
	if left := p.Estimate - p.Scanned; left > 0 && tp.KeysPerSecond > 0 {
		eta := float64(left) / tp.KeysPerSecond
		tp.ETASeconds = &eta
	}
}

// reconcileRun serves POST /v1/admin/reconcile/run?backend=B&tenant=T&
// confirm=1&wait=1. backend and tenant narrow the run (default: all).
// confirm=1 lets the next round of the tenant (every tenant when none is
// named) pass the mass-deletion guard once. With wait=1 the rounds run one
// after another and the answer holds their results (200, even when a round
// failed: each result carries its error); without it every selected engine
// is triggered for a pass over all its tenants (202) and
// GET /v1/admin/reconcile shows the outcome.
func (n *Node) reconcileRun(w http.ResponseWriter, r *http.Request) {
	if n.repl == nil || len(n.repl.engines) == 0 {
		http.Error(w, "no backends configured (--backend)", http.StatusConflict)
		return
	}
	q := r.URL.Query()
	engines := n.repl.engines
	if name := q.Get("backend"); name != "" {
		e, _ := n.repl.engine(name)
		if e == nil {
			http.Error(w, fmt.Sprintf("no backend %q", name), http.StatusNotFound)
			return
		}
		engines = []*reconcile.Engine{e}
	}
	tenant := q.Get("tenant")
	if tenant != "" {
		if err := doc.ValidateTenant(tenant); err != nil {
			http.Error(w, fmt.Sprintf("tenant %q: %v", tenant, err), http.StatusBadRequest)
			return
		}
	}
	tenants := make([][]string, len(engines)) // per engine
	for i, e := range engines {
		tenants[i] = runTenants(r.Context(), e, tenant)
	}
	confirm, wait := q.Get("confirm") == "1", q.Get("wait") == "1"
	for i, e := range engines {
		for _, t := range tenants[i] {
			if confirm {
				e.Confirm(t)
			}
		}
	}
	if !wait {
		for _, e := range engines {
			e.Trigger()
		}
		writeJSON(w, http.StatusAccepted, api.ReconcileRun{Triggered: true})
		return
	}
	out := api.ReconcileRun{Rounds: []api.RoundResult{}}
	for i, e := range engines {
		for _, t := range tenants[i] {
			st, err := e.RunRound(r.Context(), t)
			if r.Context().Err() != nil {
				return // the client left
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
	writeJSON(w, http.StatusOK, out)
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
