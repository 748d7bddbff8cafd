package server

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// Reconciler is what the admin routes read of replication and ask of it.
// The node implements it over its reconcile engines.
type Reconciler interface {
	// ReconcileStatus is every backend's breaker and its tenants'
	// progress, the tenants catching up and the tombstone collector.
	ReconcileStatus() api.ReconcileStatus
	// RunReconcile runs or triggers rounds (see [ReconcileRequest]).
	// Outcomes: the rounds run (wait) or triggered; fault.Conflict when no
	// backend is configured; fault.NotFound for an unknown backend; the
	// context's error when the client left while rounds ran.
	RunReconcile(ctx context.Context, req ReconcileRequest) (api.ReconcileRun, error)
}

// ReconcileRequest is a POST /v1/admin/reconcile/run.
type ReconcileRequest struct {
	Backend, Tenant string // "" for every one; Tenant is valid
	// Confirm lets the next round of the tenant (every tenant when none
	// is named) pass the mass-deletion guard once.
	Confirm bool
	// Wait runs the rounds one after another and answers their results;
	// otherwise every selected engine is only triggered.
	Wait bool
	// Scrub (with Wait) reads and verifies every object of the selected
	// tenants now, as the background scrub does, instead of a round.
	Scrub bool
}

// Quarantine is the table of damaged remote objects the reconciler found.
// The node's store implements it.
type Quarantine interface {
	// QuarantineRows yields every row without the damaged bytes when
	// backend, tenant and key are all "", else only that key's rows, with
	// them. An error of class fault.Invalid is the request's fault.
	QuarantineRows(ctx context.Context, backend, tenant, key string) iter.Seq2[api.QuarantineRow, error]
}

// AdminOptions configure the admin listener's [Server] made by [NewAdmin].
// Handlers left nil are not mounted (their paths answer 404).
type AdminOptions struct {
	Auth Auth
	// RequireToken makes every route need an admin token: the node sets
	// it when the admin listener is beyond loopback.
	RequireToken bool
	// AuthFailed is as [Admission.AuthFailed]: the admin listener's
	// refusals share the API's budget of them.
	AuthFailed func() (ok bool, retryAfter time.Duration)
	Logger     *slog.Logger
	// Ready and CatchingUp decide /readyz as on the API; the admin
	// listener's body also names the tenants catching up.
	Ready                func() bool
	Failed               func() bool
	IdentityConflict     func() bool // as Options.IdentityConflict
	CatchingUp           func() []string
	ServeWhileCatchingUp bool

	Metrics     http.Handler // GET /metrics
	Pprof       http.Handler // /debug/pprof/
	TenantStats http.Handler // GET /v1/admin/tenants
	Reconciler  Reconciler   // GET /v1/admin/reconcile, POST /v1/admin/reconcile/run
	Quarantine  Quarantine   // GET /v1/admin/quarantine
	// Chaos, when not nil, mounts the fault simulator's routes (chaos.go).
	Chaos Chaos
	// Console, when not nil, is mounted on /console/ (it signs its users
	// in itself, so it is public to the token check), and / redirects to it.
	Console http.Handler
	// Middleware wraps the /v1/admin/ routes' handlers, first outermost:
	// the node's tracing and request metrics. Health, metrics scrapes and
	// profiles are not wrapped: they are probes, not requests anyone traces.
	Middleware []Middleware
}

// NewAdmin returns the server of the admin listener: health, metrics,
// profiles, per-tenant figures, reconciliation and, with chaos on, the
// fault simulator's controls. Its requests get their ids, their token check
// and their error body exactly as the API's do; only its failures are
// logged (its successes are probes and scrapes, not an access log anyone
// reads).
func NewAdmin(o AdminOptions) (*Server, error) {
	v, err := newVerifier(o.Auth)
	if err != nil {
		return nil, err
	}
	s := &Server{
		auth:        v,
		drained:     make(chan struct{}),
		log:         o.Logger,
		ready:       o.Ready,
		failed:      o.Failed,
		conflict:    o.IdentityConflict,
		catchingUp:  o.CatchingUp,
		serveCU:     o.ServeWhileCatchingUp,
		readyzNames: true,
		authFailed:  o.AuthFailed,
		retryAfter:  time.Second,
		// No read or write timeout: a CPU profile streams for as long as
		// it was asked to run.
		timeouts:   Timeouts{ReadHeader: 5 * time.Second, Read: -1, Write: -1, Idle: time.Minute, MaxHeaderBytes: http.DefaultMaxHeaderBytes},
		mux:        http.NewServeMux(),
		ids:        newIDGen(),
		now:        time.Now,
		errorsOnly: true,
		loopback:   !o.RequireToken,
	}
	s.shedLog.Period = shedLogPeriod
	if s.log == nil {
		s.log = slog.Default()
	}
	s.conns.setMax(0)
	for _, rt := range adminRoutes(s, o) {
		if err := s.Mount(rt); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// adminRoutes lists the admin listener's routes, each path also answering
// its other methods with a JSON 405, then the catch-all 404.
func adminRoutes(s *Server, o AdminOptions) []Route {
	access := AccessPublic
	if o.RequireToken {
		access = AccessAdmin
	}
	var rts []Route
	add := func(pattern, op string, h http.Handler) {
		if h != nil {
			rts = append(rts, Route{Pattern: pattern, Op: op, Access: access, Handler: h})
		}
	}
	add("GET /livez", "livez", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
	add("GET /readyz", "readyz", http.HandlerFunc(s.readyz)) // the API's answer, naming the tenants catching up
	add("GET "+OpenAPIPath, "openapi", http.HandlerFunc(serveOpenAPI))
	if o.Metrics != nil {
		add("GET /metrics", "metrics", JSONErrors(o.Metrics))
	}
	if o.Pprof != nil {
		add("/debug/pprof/", "pprof", JSONErrors(o.Pprof))
	}
	if o.TenantStats != nil {
		add("GET /v1/admin/tenants", "admin.tenants", JSONErrors(o.TenantStats))
	}
	if rc := o.Reconciler; rc != nil {
		add("GET /v1/admin/reconcile", "admin.reconcile", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeIndentedJSON(w, http.StatusOK, rc.ReconcileStatus())
		}))
		add("POST /v1/admin/reconcile/run", "admin.reconcile.run", s.reconcileRun(rc))
	}
	if o.Quarantine != nil {
		add("GET /v1/admin/quarantine", "admin.quarantine", s.quarantineList(o.Quarantine))
	}
	rts = append(rts, s.chaosRoutes(o)...) // chaos.go
	for i := range rts {
		if strings.Contains(rts[i].Pattern, " /v1/admin/") {
			for j := len(o.Middleware) - 1; j >= 0; j-- {
				rts[i].Handler = o.Middleware[j](rts[i].Handler)
			}
		}
	}
	rts = append(rts, methodGuards(s, rts, access)...)
	if o.Console != nil {
		rts = append(rts,
			Route{Pattern: "/console/", Op: "console", Access: AccessPublic, Handler: o.Console},
			Route{Pattern: "GET /{$}", Op: "console", Access: AccessPublic, Handler: http.RedirectHandler("/console/", http.StatusSeeOther)})
	}
	return append(rts, Route{Pattern: "/", Op: "unknown", Access: access, Handler: http.HandlerFunc(s.notFound)})
}

// methodGuards returns, for each path of rts mounted with a method, a
// method-less route answering the other methods with a JSON 405 and the
// Allow header (ServeMux prefers the patterns with a method).
func methodGuards(s *Server, rts []Route, access Access) []Route {
	allow := map[string][]string{}
	var paths []string
	for _, rt := range rts {
		method, path, ok := strings.Cut(rt.Pattern, " ")
		if !ok {
			continue
		}
		if _, seen := allow[path]; !seen {
			paths = append(paths, path)
		}
		allow[path] = append(allow[path], method)
		if method == http.MethodGet {
			allow[path] = append(allow[path], http.MethodHead)
		}
	}
	var guards []Route
	for _, p := range paths {
		guards = append(guards, Route{Pattern: p, Op: "unknown", Access: access, Handler: s.notAllowed(strings.Join(allow[p], ", "))})
	}
	return guards
}

// reconcileRun serves POST /v1/admin/reconcile/run?backend=B&tenant=T&
// confirm=1&wait=1&scrub=1. backend and tenant narrow the run (default:
// all); scrub=1 (with wait=1) scrubs instead of running rounds.
// With wait=1 the answer holds the rounds' results (200, even when a round
// failed: each result carries its error); without it the rounds are only
// triggered (202) and GET /v1/admin/reconcile shows the outcome.
func (s *Server) reconcileRun(rc Reconciler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := onlyParams(q, "backend", "tenant", "confirm", "wait", "scrub"); err != nil {
			// A misspelt tenant= or backend= would start rounds of everything.
			s.writeError(w, r, fault.New(fault.Invalid, fault.Context{Op: "admin.reconcile.run"}, err.Error()))
			return
		}
		req := ReconcileRequest{Backend: q.Get("backend"), Tenant: q.Get("tenant")}
		for _, f := range []struct {
			name string
			v    *bool
		}{{"confirm", &req.Confirm}, {"wait", &req.Wait}, {"scrub", &req.Scrub}} {
			var err error
			if *f.v, err = QueryFlag(q, f.name); err != nil {
				s.writeError(w, r, fault.New(fault.Invalid, fault.Context{Op: "admin.reconcile.run"}, err.Error()))
				return
			}
		}
		if req.Scrub && !req.Wait {
			s.writeError(w, r, fault.New(fault.Invalid, fault.Context{Op: "admin.reconcile.run"},
				"scrub=1 needs wait=1: a scrub runs now, or in the background at --scrub-rate"))
			return
		}
		if req.Tenant != "" {
			if err := doc.ValidateTenant(req.Tenant); err != nil {
				s.writeError(w, r, fault.New(fault.Invalid, fault.Context{Op: "admin.reconcile.run"},
					fault.MessageOf(err))) // it names the tenant
				return
			}
		}
		// An operator's action, logged whoever may take it (a loopback
		// listener takes it from any local process): confirm=1 lets a
		// guarded mass deletion through.
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "admin: reconciliation run requested",
			slog.String("request_id", reqctx.RequestID(r.Context())), slog.String("remote", r.RemoteAddr),
			slog.String("backend", req.Backend), slog.String("tenant", req.Tenant),
			slog.Bool("confirm", req.Confirm), slog.Bool("wait", req.Wait), slog.Bool("scrub", req.Scrub))
		out, err := rc.RunReconcile(r.Context(), req)
		switch {
		case r.Context().Err() != nil:
			return // the client left
		case err != nil:
			s.writeError(w, r, err)
		case out.Triggered:
			writeIndentedJSON(w, http.StatusAccepted, out)
		default:
			writeIndentedJSON(w, http.StatusOK, out)
		}
	})
}

// quarantineList serves GET /v1/admin/quarantine: every row, without the
// damaged bytes; with backend, tenant and key all given, only that key's
// rows, with their bytes. It reads the whole table: rows exist only for
// objects found damaged, so it stays small unless a backend is rotting,
// which is what an operator is here to see.
func (s *Server) quarantineList(qt Quarantine) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const op = "admin.quarantine"
		q := r.URL.Query()
		if err := onlyParams(q, "backend", "tenant", "key"); err != nil {
			s.writeError(w, r, invalid(op, err.Error()))
			return
		}
		be, tenant, key := q.Get("backend"), q.Get("tenant"), q.Get("key")
		one := be != "" || tenant != "" || key != ""
		if one && (be == "" || tenant == "" || key == "") {
			s.writeError(w, r, invalid(op, "give backend, tenant and key together (one key's rows, with their bytes), or none (every row)"))
			return
		}
		out := api.QuarantineList{Rows: []api.QuarantineRow{}}
		for row, err := range qt.QuarantineRows(r.Context(), be, tenant, key) {
			if fault.ClassOf(err) == fault.Invalid {
				s.writeError(w, r, invalid(op, fault.MessageOf(err)))
				return
			}
			if err != nil {
				// The class decides the status (a 5xx) and the message
				// stays the fixed one; the cause goes to the log only.
				s.writeError(w, r, &fault.Error{Class: fault.ClassOf(err), Context: fault.Context{Op: op},
					Msg: "reading the quarantine failed", Err: err})
				return
			}
			out.Rows = append(out.Rows, row)
		}
		writeIndentedJSON(w, http.StatusOK, out)
	})
}

// writeIndentedJSON answers v indented: the admin routes are read by
// people with curl as much as by programs.
func writeIndentedJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// QueryFlag reads the query parameter name as a switch: absent, 0 or false
// is off, 1 or true on. Any other value is an error naming it, rather than
// off: a client that wrote wait=yes expects to wait.
func QueryFlag(q url.Values, name string) (bool, error) {
	switch v := q.Get(name); v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q: want 1 or 0 (true or false)", name, v)
	}
}

// loopbackRequest refuses, on a loopback admin listener (which serves
// without a token: only this machine reaches it), what this machine's
// browser would send there on a web page's behalf:
//   - a request addressed to a name that is not loopback (Host): a page
//     whose DNS name was rebound to 127.0.0.1 reads the answers as its own;
//   - a request that changes something (not GET or HEAD) from a page of
//     another origin (Origin), another port on loopback included: a form
//     or fetch from any site reaches 127.0.0.1 with the user's console
//     cookie.
func loopbackRequest(r *http.Request) error {
	const op = "admin.loopback"
	if !LoopbackHost(hostOnly(r.Host)) {
		return fault.New(fault.Forbidden, fault.Context{Op: op}, fmt.Sprintf(
			"Host %q is not a loopback name: this admin listener serves without a token and answers requests addressed to it as 127.0.0.1, [::1] or localhost only", bound(r.Host, 64)))
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		// Its own pages only: another port on loopback is another site's
		// (a development server, a notebook), whose page must not start
		// rounds or confirm deletions here.
		u, err := url.Parse(origin)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return fault.New(fault.Forbidden, fault.Context{Op: op}, fmt.Sprintf(
				"Origin %q: this admin listener takes changes from its own pages (%s) and from clients that send no Origin, not from other sites' pages", bound(origin, 64), bound(r.Host, 64)))
		}
	}
	return nil
}

// hostOnly is the host of a Host header, without its port.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// LoopbackHost reports whether the host h (a name or an IP, without a
// port) names this machine's loopback interface: localhost, or a loopback
// address.
func LoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
