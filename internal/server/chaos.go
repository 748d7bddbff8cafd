package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/cairnstore/cairn/api/chaosapi"
	"github.com/cairnstore/cairn/internal/chaos"
	"github.com/cairnstore/cairn/internal/fault"
)

// Chaos is the fault simulator as its admin routes see it; the node
// implements it when it runs with chaos on (cairn serve --enable-chaos).
type Chaos interface {
	// ChaosStatus is the seed, the armed failpoints and every backend's
	// profile and injection counts.
	ChaosStatus() chaosapi.Status
	// ChaosBackend returns the simulator wrapping the named backend, or
	// nil and the names of the backends there are.
	ChaosBackend(name string) (ChaosBackend, []string)
}

// ChaosBackend is one backend's simulator (*chaos.Backend).
type ChaosBackend interface {
	// SetProfile replaces the profile; an invalid one is refused.
	SetProfile(chaos.Profile) error
	// Heal clears the profile; calls held by a "hang" partition go on.
	Heal()
	// Schedule is the faults injected since the start, in canonical
	// order; Dropped counts those the bounded schedule left out.
	Schedule() []chaos.Injection
	Dropped() int
}

var _ ChaosBackend = (*chaos.Backend)(nil)

// maxChaosProfile bounds a profile's body: a profile is a few fields.
const maxChaosProfile = 64 << 10

// chaosRoutes are the simulator's control routes, mounted only with chaos
// on (otherwise their paths answer 404). They demand the admin token even
// on a loopback admin listener, where the other admin routes are open:
// they break things on purpose. A node without an admin token answers
// them 403.
func (s *Server) chaosRoutes(o AdminOptions) []Route {
	c := o.Chaos
	if c == nil {
		return nil
	}
	access := AccessAdmin
	guard := func(h http.HandlerFunc) http.Handler { return h }
	if len(o.Auth.Admin) == 0 {
		access = AccessPublic
		refuse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, r, fault.New(fault.Forbidden, fault.Context{Op: "admin.chaos"},
				"chaos control needs an admin token: start the node with --admin-token-sha256"))
		})
		guard = func(http.HandlerFunc) http.Handler { return refuse }
	}
	return []Route{
		{Pattern: "GET /v1/admin/chaos", Op: "admin.chaos", Access: access, Handler: guard(func(w http.ResponseWriter, r *http.Request) {
			writeIndentedJSON(w, http.StatusOK, c.ChaosStatus())
		})},
		{Pattern: "PUT /v1/admin/chaos/{backend}", Op: "admin.chaos.set", Access: access, Handler: guard(s.chaosSet(c))},
		{Pattern: "DELETE /v1/admin/chaos/{backend}", Op: "admin.chaos.heal", Access: access, Handler: guard(s.chaosHeal(c))},
		{Pattern: "GET /v1/admin/chaos/{backend}/schedule", Op: "admin.chaos.schedule", Access: access, Handler: guard(s.chaosSchedule(c))},
	}
}

// chaosBackend returns the simulator named by the path, or answers 404.
func (s *Server) chaosBackend(c Chaos, w http.ResponseWriter, r *http.Request) (string, ChaosBackend) {
	name := r.PathValue("backend")
	cb, names := c.ChaosBackend(name)
	if cb == nil {
		s.writeError(w, r, fault.New(fault.NotFound, fault.Context{Op: "admin.chaos"},
			fmt.Sprintf("no backend %q (configured: %s)", name, strings.Join(names, ", "))))
	}
	return name, cb
}

// chaosSet serves PUT /v1/admin/chaos/{backend}: the body is a
// chaos.Profile, which replaces the backend's profile.
func (s *Server) chaosSet(c Chaos) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, cb := s.chaosBackend(c, w, r)
		if cb == nil {
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxChaosProfile))
		if err != nil {
			s.writeError(w, r, bodyReadError("admin.chaos.set", maxChaosProfile, err))
			return
		}
		p, err := chaos.ParseProfile(body)
		if err == nil {
			err = cb.SetProfile(p)
		}
		if err != nil {
			s.writeError(w, r, invalid("admin.chaos.set", fault.MessageOf(err)))
			return
		}
		pj, _ := json.Marshal(p)
		s.log.WarnContext(r.Context(), "chaos: profile set", "backend", name, "profile", string(pj))
		writeIndentedJSON(w, http.StatusOK, chaosapi.Profile{Backend: name, Profile: p})
	}
}

// chaosHeal serves DELETE /v1/admin/chaos/{backend}: the profile is
// cleared, and calls held by a "hang" partition go on.
func (s *Server) chaosHeal(c Chaos) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, cb := s.chaosBackend(c, w, r)
		if cb == nil {
			return
		}
		cb.Heal()
		s.log.WarnContext(r.Context(), "chaos: healed", "backend", name)
		writeIndentedJSON(w, http.StatusOK, chaosapi.Profile{Backend: name, Profile: chaos.Profile{}})
	}
}

// chaosSchedule serves GET /v1/admin/chaos/{backend}/schedule: the faults
// injected since the start, in canonical order, to compare two runs.
func (s *Server) chaosSchedule(c Chaos) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, cb := s.chaosBackend(c, w, r)
		if cb == nil {
			return
		}
		sch := cb.Schedule()
		if sch == nil {
			sch = []chaos.Injection{}
		}
		writeIndentedJSON(w, http.StatusOK, chaosapi.Schedule{Backend: name, Injections: sch, Dropped: cb.Dropped()})
	}
}
