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

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/reconcile"
)

// ReconcileStatus is the body of GET /v1/admin/reconcile.
type ReconcileStatus struct {
	Backends []BackendStatus `json:"backends"`
	// CatchingUp names the tenants /readyz waits for (catchup.go).
	CatchingUp []string         `json:"catching_up"`
	Collector  *CollectorStatus `json:"collector,omitempty"` // collect_admin.go
}

// BackendStatus is one backend's breaker and its tenants' progress.
type BackendStatus struct {
	Name    string `json:"name"`
	Breaker string `json:"breaker"` // closed, open or half_open
	// LagSeconds is the replication lag: the age of the oldest change not
	// yet uploaded to the backend (reconcile.Engine.ReplicationLag).
	LagSeconds float64          `json:"lag_seconds"`
	Tenants    []TenantProgress `json:"tenants"` // tenants the engine serves or has worked on, by name
}

// TenantProgress is one tenant's progress on one backend.
type TenantProgress struct {
	Tenant  string `json:"tenant"`
	Running bool   `json:"running"`
	// CatchingUp: no round of the tenant has completed and the backend
	// may hold documents the node does not; Scanned and Downloaded are the
	// catch-up's progress while its round runs.
	CatchingUp bool `json:"catching_up"`
	Downloaded int  `json:"downloaded,omitempty"`
	// Cursor is the last key fully handled by the round in progress.
	Cursor  string `json:"cursor,omitempty"`
	Scanned int    `json:"scanned"`
	// Started and ResumedAfter describe the round in progress.
	Started      *time.Time `json:"started,omitempty"`
	ResumedAfter string     `json:"resumed_after,omitempty"`
	// Estimate is the number of keys the last whole round scanned: the
	// expected size of this one (absent before a first whole round).
	Estimate int `json:"estimate,omitempty"`
	// PercentDone is Scanned of Estimate while a round runs, below 100
	// until it ends (a resumed round counts only the keys since its
	// cursor, so it reads low); KeysPerSecond is the round's rate so far,
	// and ETASeconds the rest of the estimate at that rate. Each is absent
	// when it cannot be known.
	PercentDone   *float64 `json:"percent_done,omitempty"`
	KeysPerSecond float64  `json:"keys_per_second,omitempty"`
	ETASeconds    *float64 `json:"eta_seconds,omitempty"`
	// Last is the last finished round, LastError its error ("" if none).
	Last      *RoundResult `json:"last,omitempty"`
	LastError string       `json:"last_error,omitempty"`
	// LastUploadError is the last fast-path upload's error ("" if none).
	LastUploadError string `json:"last_upload_error,omitempty"`
}

// RoundResult is reconcile.Stats as JSON.
type RoundResult struct {
	Backend      string         `json:"backend,omitempty"`
	Tenant       string         `json:"tenant"`
	Started      time.Time      `json:"started"`
	DurationMS   float64        `json:"duration_ms"`
	ResumedAfter string         `json:"resumed_after,omitempty"`
	Scanned      int            `json:"scanned"`
	Applied      int            `json:"applied"` // actions other than in_sync
	Actions      map[string]int `json:"actions,omitempty"`
	Conflicts    int            `json:"conflicts"`
	Losers       int            `json:"losers"`
	Siblings     int            `json:"siblings"`
	Deletes      int            `json:"deletes"`
	Corrupt      int            `json:"corrupt"`
	Repaired     int            `json:"repaired"`
	Raced        int            `json:"raced"`
	BytesUp      int64          `json:"bytes_up"`
	BytesDown    int64          `json:"bytes_down"`
	// Error and NeedsConfirm are set in a run's answer only.
	Error        string `json:"error,omitempty"`
	NeedsConfirm bool   `json:"needs_confirm,omitempty"`
}

// ReconcileRun is the body of POST /v1/admin/reconcile/run.
type ReconcileRun struct {
	// Triggered is true when the rounds were only started (no wait=1).
	Triggered bool          `json:"triggered"`
	Rounds    []RoundResult `json:"rounds,omitempty"`
}

func resultOf(st reconcile.Stats) *RoundResult {
	r := &RoundResult{
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
	out := ReconcileStatus{Backends: []BackendStatus{}, CatchingUp: n.catchingUpAtStart(), Collector: n.collectorStatus()}
	if out.CatchingUp == nil {
		out.CatchingUp = []string{}
	}
	if n.repl != nil {
		for i, e := range n.repl.engines {
			bs := BackendStatus{Name: e.Backend(), Breaker: n.repl.policies[i].State().String(),
				LagSeconds: e.ReplicationLag().Seconds(), Tenants: []TenantProgress{}}
			now := time.Now()
			for tenant, p := range e.AllProgress() {
				tp := TenantProgress{Tenant: tenant, Running: p.Running, CatchingUp: p.CatchingUp, Downloaded: p.Downloaded,
					Cursor: p.Cursor, Scanned: p.Scanned, Estimate: p.Estimate}
				if p.Running {
					tp.fillRunning(p, now)
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
			slices.SortFunc(bs.Tenants, func(a, b TenantProgress) int { return strings.Compare(a.Tenant, b.Tenant) })
			out.Backends = append(out.Backends, bs)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// fillRunning sets the fields of a round in progress: percent done from
// the keys scanned against the last whole round's size, and the ETA at
// the round's rate so far.
func (tp *TenantProgress) fillRunning(p reconcile.Progress, now time.Time) {
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
		writeJSON(w, http.StatusAccepted, ReconcileRun{Triggered: true})
		return
	}
	out := ReconcileRun{Rounds: []RoundResult{}}
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
