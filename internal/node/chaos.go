package node

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/cairnstore/cairn/api/chaosapi"
	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/chaos"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// Chaos turns on the fault simulator (cairn serve --enable-chaos). Off by
// default: a node without it has no chaos routes, wraps no backend and
// arms no failpoint.
//
// With it, every backend is wrapped in a chaos.Backend whose fault profile
// the admin listener sets (PUT /v1/admin/chaos/{backend}, admin token
// required even on loopback), the failpoints named in Failpoints are armed
// in the store and the reconcilers, and Ballast bytes are held for the
// node's life.
type Chaos struct {
	// Seed drives every fault decision; each backend's seed is derived
	// from it and the backend's name. The start-up log prints it.
	Seed uint64
	// Failpoints is CAIRN_FAILPOINTS: "name=kill@N[,name=kill%P]".
	Failpoints string
	// Ballast is CAIRN_CHAOS_BALLAST: bytes allocated and held at start.
	Ballast int64
}

// chaosState is a running node's simulator. Set once in Start.
type chaosState struct {
	cfg      Chaos
	fp       *chaos.Failpoints         // nil when none is armed
	backends map[string]*chaos.Backend // by backend name
	names    []string                  // sorted
	ballast  []byte
}

// setupChaos parses the failpoints and allocates the ballast, before the
// store opens (the store takes the failpoint hook).
func (n *Node) setupChaos() error {
	c := n.cfg.Chaos
	if c == nil {
		return nil
	}
	fp, err := chaos.ParseFailpoints(c.Failpoints, c.Seed, n.log)
	if err != nil {
		return fault.New(fault.Config, fault.Context{Op: "node.start"}, "CAIRN_FAILPOINTS: "+err.Error())
	}
	cs := &chaosState{cfg: *c, backends: map[string]*chaos.Backend{}}
	if fp.Armed() {
		cs.fp = fp
	}
	cs.ballast = chaos.Ballast(c.Ballast)
	n.chaos = cs
	n.log.Warn("chaos: simulator enabled", "seed", c.Seed, "failpoints", fp.String(),
		"ballast_bytes", c.Ballast, "gomemlimit", debug.SetMemoryLimit(-1))
	return nil
}

// failpoint is the hook for the store and the engines: nil unless a
// failpoint is armed, so an unarmed node pays one nil check.
func (n *Node) failpoint() func(string) {
	if n.chaos == nil || n.chaos.fp == nil {
		return nil
	}
	return n.chaos.fp.Hit
}

// wrapChaos wraps be when chaos is on.
func (n *Node) wrapChaos(be backend.Backend) backend.Backend {
	cs := n.chaos
	if cs == nil {
		return be
	}
	name := be.Name()
	cb := chaos.Wrap(be, cs.cfg.Seed^nameSeed(name), chaos.Report{Log: n.log, Counter: n.tel.Metrics})
	cs.backends[name] = cb
	cs.names = append(cs.names, name)
	slices.Sort(cs.names)
	n.tel.Metrics.AddChaosBackend(name, chaos.Faults)
	return cb
}

// keepBallast holds the ballast until the node is shut down.
func (n *Node) keepBallast() {
	if n.chaos != nil {
		runtime.KeepAlive(n.chaos.ballast)
	}
}

// nameSeed gives each backend its own schedule under one node seed.
func nameSeed(name string) uint64 {
	s := sha256.Sum256([]byte(name))
	var x uint64
	for _, b := range s[:8] {
		x = x<<8 | uint64(b)
	}
	return x
}

// chaosRoutes adds the chaos control routes to the admin mux; they exist
// only with chaos on (otherwise 404).
func (n *Node) chaosRoutes(mux *http.ServeMux) {
	if n.chaos == nil {
		return
	}
	guard := func(h http.HandlerFunc) http.Handler { return n.requireChaosAdmin(h) }
	mux.Handle("GET /v1/admin/chaos", guard(n.chaosStatus))
	mux.Handle("PUT /v1/admin/chaos/{backend}", guard(n.chaosSet))
	mux.Handle("DELETE /v1/admin/chaos/{backend}", guard(n.chaosHeal))
	mux.Handle("GET /v1/admin/chaos/{backend}/schedule", guard(n.chaosSchedule))
}

// requireChaosAdmin demands the admin token on the chaos routes even on a
// loopback admin listener, where the other admin routes are open: they
// break things on purpose. A node without an admin token answers 403.
func (n *Node) requireChaosAdmin(next http.Handler) http.Handler {
	if len(n.cfg.Auth.Admin) == 0 {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			adminError(w, r, http.StatusForbidden, "forbidden",
				"chaos control needs an admin token: start the node with --admin-token-sha256")
		})
	}
	return n.api.RequireAdmin(next)
}

// chaosBackend returns the wrapper named by the path, or answers 404.
func (n *Node) chaosBackend(w http.ResponseWriter, r *http.Request) (string, *chaos.Backend) {
	name := r.PathValue("backend")
	cb := n.chaos.backends[name]
	if cb == nil {
		adminError(w, r, http.StatusNotFound, "not_found",
			fmt.Sprintf("no backend %q (configured: %s)", name, strings.Join(n.chaos.names, ", ")))
	}
	return name, cb
}

// chaosSet serves PUT /v1/admin/chaos/{backend}: the body is a
// chaos.Profile, which replaces the backend's profile.
func (n *Node) chaosSet(w http.ResponseWriter, r *http.Request) {
	name, cb := n.chaosBackend(w, r)
	if cb == nil {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		adminError(w, r, http.StatusBadRequest, "invalid", "reading the body: "+err.Error())
		return
	}
	p, err := chaos.ParseProfile(body)
	if err == nil {
		err = cb.SetProfile(p)
	}
	if err != nil {
		adminError(w, r, http.StatusBadRequest, "invalid", fault.MessageOf(err))
		return
	}
	pj, _ := json.Marshal(p)
	n.log.WarnContext(r.Context(), "chaos: profile set", "backend", name, "profile", string(pj))
	writeJSON(w, http.StatusOK, chaosapi.Profile{Backend: name, Profile: p})
}

// chaosHeal serves DELETE /v1/admin/chaos/{backend}: the profile is
// cleared, and calls held by a "hang" partition go on.
func (n *Node) chaosHeal(w http.ResponseWriter, r *http.Request) {
	name, cb := n.chaosBackend(w, r)
	if cb == nil {
		return
	}
	cb.Heal()
	n.log.WarnContext(r.Context(), "chaos: healed", "backend", name)
	writeJSON(w, http.StatusOK, chaosapi.Profile{Backend: name, Profile: chaos.Profile{}})
}

// chaosStatus serves GET /v1/admin/chaos.
func (n *Node) chaosStatus(w http.ResponseWriter, r *http.Request) {
	out := chaosapi.Status{Seed: n.chaos.cfg.Seed, Backends: map[string]chaosapi.BackendStatus{}}
	if n.chaos.fp != nil {
		out.Failpoints = n.chaos.fp.String()
	}
	for name, cb := range n.chaos.backends {
		inj := cb.Injected()
		if inj == nil {
			inj = map[string]int64{}
		}
		out.Backends[name] = chaosapi.BackendStatus{Profile: cb.Profile(), Injected: inj}
	}
	writeJSON(w, http.StatusOK, out)
}

// chaosSchedule serves GET /v1/admin/chaos/{backend}/schedule: the faults
// injected since the start, in canonical order, to compare two runs.
func (n *Node) chaosSchedule(w http.ResponseWriter, r *http.Request) {
	name, cb := n.chaosBackend(w, r)
	if cb == nil {
		return
	}
	s := cb.Schedule()
	if s == nil {
		s = []chaos.Injection{}
	}
	writeJSON(w, http.StatusOK, chaosapi.Schedule{Backend: name, Injections: s, Dropped: cb.Dropped()})
}

// adminError answers with the API's error body,
// {"error":{"code","message","request_id"}}; the request id is the one the
// admin listener gave the request (server.AdminHandler), as on the API.
func adminError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	type body struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}
	writeJSON(w, status, map[string]body{"error": {code, msg, reqctx.RequestID(r.Context())}})
}
