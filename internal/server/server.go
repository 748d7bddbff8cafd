package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/logevery"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// Doc is a document as the server reads it.
type Doc struct {
	ETag string // strong entity tag, quotes included
	Body []byte // immutable; written to the response without copying
	// ReadThrough names the backend the document was read from, for a
	// node catching up that does not hold it yet; "" when it was read
	// locally. The answer says so in X-Cairn-Read-Through.
	ReadThrough string
}

// Item is one row of a listing.
type Item struct {
	Key  string
	ETag string
	Size int
	// Conflict marks a document with open siblings: ETag and Size are
	// the sibling set's, and a GET answers 409.
	Conflict bool
}

// Docs is the document service the server consumes. The node implements it
// over the cache and the store; servertest.Mem is an in-memory fake.
//
// Errors are classified with package fault; the class decides the status.
type Docs interface {
	// Get returns the live version of a document, or an error of class
	// fault.NotFound when it is absent or deleted, or fault.Conflict with
	// a *doc.SiblingsError in its chain when it has open siblings. Put and
	// Delete answer that conflict too, for a write that does not name the
	// siblings in If-Match (see [Conflicts]).
	Get(ctx context.Context, tenant, key string) (Doc, error)
	// Put writes body as the new version if pre holds against the current
	// one, atomically, and reports the new ETag and whether no live version
	// existed before (created). A failed condition is fault.PreconditionFailed.
	// Body belongs to Docs after the call; the server never modifies it.
	Put(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (etag string, created bool, err error)
	// Delete removes the live version if pre holds. An absent document is
	// fault.NotFound (checked before pre, as RFC 9110 §13.2.1 asks); a failed
	// condition fault.PreconditionFailed.
	Delete(ctx context.Context, tenant, key string, pre doc.Precondition) error
	// List yields the live documents of tenant whose keys start with prefix
	// and sort after the key after, in key order, at most limit of them. It
	// streams: the server writes each row as it is yielded. An error ends
	// the sequence.
	List(ctx context.Context, tenant, prefix, after string, limit int) iter.Seq2[Item, error]
}

// Access is who may call a route.
type Access uint8

const (
	// AccessPublic needs no token (probes, metrics).
	AccessPublic Access = iota
	// AccessTenant needs a token of the tenant named by the {tenant} path
	// wildcard, or an admin token.
	AccessTenant
	// AccessAdmin needs an admin token.
	AccessAdmin
)

// Route is an endpoint mounted on the server with [Server.Mount] or
// [Options.Routes]: the seam for the ingest and admin endpoints.
type Route struct {
	// Pattern is a ServeMux pattern, e.g. "POST /v1/tenants/{tenant}/ingest".
	Pattern string
	// Op names the operation in logs, errors and [reqctx.Info].
	Op      string
	Access  Access
	Handler http.Handler
}

// Timeouts configure the http.Server made by [Server.HTTPServer]. Zero
// fields take the defaults in brackets.
type Timeouts struct {
	ReadHeader     time.Duration // [5s] to read the request line and headers
	Read           time.Duration // [30s] to read the whole request, body included
	Write          time.Duration // [30s] to write a response; a listing extends it as it streams
	Idle           time.Duration // [120s] a keep-alive connection may wait for the next request
	MaxHeaderBytes int           // [64 KiB]
}

// DefaultTimeouts returns the API server's timeouts where
// [Options.Timeouts] leaves them zero. The load generator's bare baseline
// server uses them too, so that both pay for the same connection
// deadlines.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		ReadHeader:     5 * time.Second,
		Read:           30 * time.Second,
		Write:          30 * time.Second,
		Idle:           120 * time.Second,
		MaxHeaderBytes: 64 << 10,
	}
}

// Options configure a [Server]. Only Docs is required.
type Options struct {
	Docs Docs
	Auth Auth
	// Validate checks a body before it is stored; nil means strict RFC 8259
	// JSON (ingest.ValidateDepth) nested at most MaxDepth deep. Its error
	// may carry the byte offset of the problem, as an *ingest.SyntaxError, a
	// *json.SyntaxError or through a ByteOffset() int64 method; the 400
	// message then names it.
	Validate func(body []byte) error
	// MaxBodyBytes bounds a document body [1 MiB]; larger bodies get 413.
	MaxBodyBytes int64
	// Bodies bounds the memory held by the bodies of document writes in
	// flight, each byte counted twice (read, and staged for the store) as
	// it arrives: a write whose body would go over it is shed, 503 with
	// Retry-After. nil: no bound.
	Bodies *resilience.ByteBudget
	// MaxDepth bounds nesting for the default validator [64].
	MaxDepth int
	// Logger gets one line per request ([slog.Default] if nil).
	Logger *slog.Logger
	// Ready reports whether the node can serve (the store is open); nil
	// means always. /readyz is 503 until it is true and after SetDraining.
	Ready func() bool
	// Failed, if set, reports that the node cannot serve until it is
	// restarted (its store failed): /readyz says "store_failed".
	Failed func() bool
	// IdentityConflict, if set, reports that another process claimed the
	// node's identity: /readyz says "identity_conflict".
	IdentityConflict func() bool
	// CatchingUp, if set, returns the tenants (sorted) still restoring
	// from a backend after the node started. While it returns any, /readyz
	// answers 503 with status "catching_up" and their names, unless
	// ServeWhileCatchingUp, when it answers 200 and still names them.
	CatchingUp           func() []string
	ServeWhileCatchingUp bool
	// Middleware wraps every tenant and admin route, first element
	// outermost. It runs after routing (so [TenantOf] and r.Pattern are
	// known, the tenant syntactically valid) and before authentication, so
	// it sees the requests authentication refuses: the place for tracing and
	// metrics. The document routes are routed without ServeMux, so
	// r.PathValue is empty there: the tenant is [TenantOf]'s. It must let a panic with http.ErrAbortHandler propagate: that
	// is how a failed listing stream aborts its connection.
	Middleware []Middleware
	// Admission decides which authenticated requests are served and
	// bounds the requests that fail authentication (see [Admission]).
	Admission Admission
	// Deadline bounds every request that is not a GET or HEAD: it returns
	// the request's context with its deadline and the cancel to call when
	// the request ends; nil means no deadline. The deadline may be a
	// standard one (resilience.Deadlines.Context) or carried as a value
	// that the store checks and that code which waits turns into a timer
	// (resilience.Deadlines.Carry, package deadline): the server reads it
	// either way.
	// Reads get none: a cache hit cannot block, a store read waits at most
	// for the commit in flight, and a listing is bounded by the server's
	// write timeout, which its flushes extend; a deadline's timer and
	// request copy would be a large share of a cached GET's small cost
	// (docs/performance.md). It is applied as the server gives the request
	// its id, so the one request copy made there carries both.
	Deadline func(*http.Request) (context.Context, context.CancelFunc)
	// Ingest, when not nil, mounts the bulk-ingestion route
	// (POST /v1/tenants/{tenant}/ingest; ingest.go).
	Ingest *IngestOptions
	// Routes are mounted after the built-in ones.
	Routes []Route
	// RetryAfter is the Retry-After of a 503 whose error does not say
	// (fault.RetryAfter: fault.WithRetryAfter or a RetryAfter method) [1s].
	RetryAfter time.Duration
	// ListLimit and MaxListLimit are the default and largest page sizes of a
	// listing [100, 1000].
	ListLimit, MaxListLimit int
	Timeouts                Timeouts
	// MaxConns bounds the connections [Server.Serve] keeps open at once
	// [DefaultMaxConns]. A request on a connection past it is answered 503
	// (Retry-After: 1) and its connection closed; past that many and 64
	// more, a new connection is closed unanswered.
	MaxConns int
}

// Middleware wraps a handler: see [Options.Middleware].
type Middleware = func(http.Handler) http.Handler

// Admission is which requests a server takes on once it has routed them
// and checked the tenant's syntax and the token, in this order (after
// [Options.Middleware], which sees every request):
//
//  1. A request that fails authentication is counted by AuthFailed, the
//     node's budget of such requests: within it the answer is 401 or 403,
//     past it 429 with the Retry-After AuthFailed gives. It is asked only
//     once the token was checked, never instead of the check, so a valid
//     token is not refused because others failed; the check itself is
//     cheap whatever the request sends (one SHA-256 of at most
//     [MaxTokenBytes]).
//  2. An authenticated request passes the Limiter: the node's requests in
//     flight (503, node busy) and the tenant's requests in flight and
//     request rate (429), each with Retry-After (resilience.Limiter). Only
//     requests that authenticated for the tenant they name (a tenant's own
//     token or an admin's acting on it) reach it, so no one else can spend
//     a tenant's budget.
//  3. The handler.
//
// The zero value admits every request and bounds nothing.
type Admission struct {
	// AuthFailed is told of each request that fails authentication, and
	// reports whether the node is within its budget of them (ok) or how
	// long until it is. nil: the Limiter's, or no budget without one.
	AuthFailed func() (ok bool, retryAfter time.Duration)
	// Limiter sheds the load of authenticated requests past the node's
	// and the tenant's limits; nil admits them all.
	Limiter Limiter
}

// Limiter sheds load per tenant and node-wide (resilience.Limiter).
type Limiter interface {
	// Middleware serves next within the limits of the tenant tenantOf
	// names, and answers 429 or 503 beyond them.
	Middleware(tenantOf func(*http.Request) string, next http.Handler) http.Handler
	// AuthFailed is as [Admission.AuthFailed].
	AuthFailed() (ok bool, retryAfter time.Duration)
}

// Server is the HTTP API. It is an http.Handler; [Server.HTTPServer] wraps
// it with the timeouts set. Its methods are safe for concurrent use.
type Server struct {
	docs       Docs
	auth       *verifier
	validate   func([]byte) error
	maxBody    int64
	bodies     *resilience.ByteBudget // Options.Bodies
	log        *slog.Logger
	ready      func() bool
	failed     func() bool
	conflict   func() bool // Options.IdentityConflict
	catchingUp func() []string
	serveCU    bool // ServeWhileCatchingUp
	// readyzNames: /readyz names the tenants catching up. Only the admin
	// listener's does: the API's /readyz answers anyone, without a token,
	// and a tenant's name is not for anyone (every other answer to a
	// request without a valid token is the same for a tenant that exists
	// and one that does not).
	readyzNames bool
	middleware  []func(http.Handler) http.Handler
	limiter     Limiter                      // Admission.Limiter; nil admits all
	authFailed  func() (bool, time.Duration) // Admission.AuthFailed, or the Limiter's
	deadline    func(*http.Request) (context.Context, context.CancelFunc)
	retryAfter  time.Duration
	listLimit   int
	maxList     int
	timeouts    Timeouts
	mux         *http.ServeMux
	router      docRouter // the document routes, routed before mux
	ids         *idGen
	conns       connLimit // Options.MaxConns, counted by Listener
	draining    atomic.Bool
	// drained is closed when the drain begins (Shutdown, Drain; not at
	// SetDraining, which only turns /readyz): an ingest stream stops at
	// its next read and answers how far it got (ingest.go).
	drained   chan struct{}
	drainOnce sync.Once
	// lingering counts the connections an ingest stopped by the drain
	// took from net/http to keep reading after its answer (lingerClose):
	// net/http's Shutdown no longer waits for them, Shutdown and Drain do.
	lingering  sync.WaitGroup
	routes     []RouteInfo // as mounted, in order
	hsOnce     sync.Once
	hs         *http.Server     // set once by httpServer
	errorsOnly bool             // log only failed requests (the admin listener)
	shedLog    logevery.Limiter // thins the lines of shed requests (logExchange)
	loopback   bool             // a loopback admin listener, which trusts its callers: see loopbackRequest

	now        func() time.Time // the clock; tests replace it
	flushEvery time.Duration    // a listing flushes when a row comes this long after the last flush
}

// shedLogPeriod is how often a tenant's shed answers of one status are
// logged at Info (logExchange).
const shedLogPeriod = 10 * time.Second

// Defaults.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxDepth     = 64
	DefaultListLimit    = 100
	DefaultMaxListLimit = 1000
)

// New checks o and returns a server with the document routes, /livez and
// /readyz mounted. Errors are of class fault.Config.
func New(o Options) (*Server, error) {
	cfg := func(msg string) error {
		return fault.New(fault.Config, fault.Context{Op: "server.new"}, msg)
	}
	if o.Docs == nil {
		return nil, cfg("Options.Docs is required")
	}
	if o.MaxBodyBytes < 0 || o.MaxDepth < 0 || o.ListLimit < 0 || o.MaxListLimit < 0 || o.RetryAfter < 0 || o.MaxConns < 0 {
		return nil, cfg("negative limit in Options")
	}
	v, err := newVerifier(o.Auth)
	if err != nil {
		return nil, err
	}
	s := &Server{
		docs:       o.Docs,
		drained:    make(chan struct{}),
		auth:       v,
		validate:   o.Validate,
		maxBody:    or(o.MaxBodyBytes, DefaultMaxBodyBytes),
		bodies:     o.Bodies,
		log:        o.Logger,
		ready:      o.Ready,
		failed:     o.Failed,
		conflict:   o.IdentityConflict,
		catchingUp: o.CatchingUp,
		serveCU:    o.ServeWhileCatchingUp,
		middleware: o.Middleware,
		limiter:    o.Admission.Limiter,
		authFailed: o.Admission.AuthFailed,
		deadline:   o.Deadline,
		retryAfter: or(o.RetryAfter, time.Second),
		listLimit:  or(o.ListLimit, DefaultListLimit),
		maxList:    or(o.MaxListLimit, DefaultMaxListLimit),
		timeouts:   o.Timeouts,
		mux:        http.NewServeMux(),
		ids:        newIDGen(),
		now:        time.Now,
		flushEvery: 20 * time.Millisecond,
	}
	s.conns.setMax(o.MaxConns)
	s.shedLog.Period = shedLogPeriod
	if s.authFailed == nil && s.limiter != nil {
		s.authFailed = s.limiter.AuthFailed
	}
	if s.listLimit > s.maxList {
		return nil, cfg("Options.ListLimit is larger than MaxListLimit")
	}
	if s.validate == nil {
		s.validate = strictJSON(or(o.MaxDepth, DefaultMaxDepth))
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	t, d := &s.timeouts, DefaultTimeouts()
	t.ReadHeader = or(t.ReadHeader, d.ReadHeader)
	t.Read = or(t.Read, d.Read)
	t.Write = or(t.Write, d.Write)
	t.Idle = or(t.Idle, d.Idle)
	t.MaxHeaderBytes = or(t.MaxHeaderBytes, d.MaxHeaderBytes)

	routes := s.builtin()
	if o.Ingest != nil {
		if o.Ingest.Writer == nil {
			return nil, cfg("Options.Ingest.Writer is required")
		}
		routes = append(routes, s.ingestRoute(o.Ingest))
	}
	for _, rt := range append(routes, o.Routes...) {
		if err := s.Mount(rt); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Paths of the document routes.
const (
	docPath  = "/v1/tenants/{tenant}/docs/{key...}"
	listPath = "/v1/tenants/{tenant}/docs"
)

func (s *Server) builtin() []Route {
	return append(s.conflictRoutes(), []Route{
		{Pattern: "GET " + docPath, Op: "doc.get", Access: AccessTenant, Handler: http.HandlerFunc(s.getDoc)},
		// HEAD has its own route so that its op is known before the
		// handler runs (spans, logs and limits all read it from reqctx).
		{Pattern: "HEAD " + docPath, Op: "doc.head", Access: AccessTenant, Handler: http.HandlerFunc(s.getDoc)},
		{Pattern: "PUT " + docPath, Op: "doc.put", Access: AccessTenant, Handler: http.HandlerFunc(s.putDoc)},
		{Pattern: "DELETE " + docPath, Op: "doc.delete", Access: AccessTenant, Handler: http.HandlerFunc(s.deleteDoc)},
		{Pattern: "GET " + listPath, Op: "doc.list", Access: AccessTenant, Handler: http.HandlerFunc(s.listDocs)},
		// Method-less patterns catch the other methods on the same paths
		// (ServeMux prefers the ones with a method), for a JSON 405.
		{Pattern: docPath, Op: "doc", Access: AccessPublic, Handler: s.notAllowed("GET, HEAD, PUT, DELETE")},
		{Pattern: listPath, Op: "doc.list", Access: AccessPublic, Handler: s.notAllowed("GET, HEAD")},
		{Pattern: "GET /livez", Op: "livez", Access: AccessPublic, Handler: http.HandlerFunc(s.livez)},
		{Pattern: "GET /readyz", Op: "readyz", Access: AccessPublic, Handler: http.HandlerFunc(s.readyz)},
		{Pattern: "GET " + OpenAPIPath, Op: "openapi", Access: AccessPublic, Handler: http.HandlerFunc(serveOpenAPI)},
		{Pattern: "/", Op: "unknown", Access: AccessPublic, Handler: http.HandlerFunc(s.notFound)},
	}...) // conflicts.go
}

// Mount adds a route. Call it before serving. It fails (class fault.Config)
// on a malformed or conflicting pattern, or a tenant route without a
// {tenant} wildcard.
func (s *Server) Mount(rt Route) (err error) {
	cfg := func(msg string) error {
		return fault.New(fault.Config, fault.Context{Op: "server.mount"}, fmt.Sprintf("route %q: %s", rt.Pattern, msg))
	}
	switch {
	case rt.Handler == nil:
		return cfg("nil handler")
	case rt.Op == "":
		return cfg("empty Op")
	case rt.Access > AccessAdmin:
		return cfg("unknown Access")
	case rt.Access == AccessTenant && !strings.Contains(rt.Pattern, "{tenant}"):
		return cfg("a tenant route needs a {tenant} wildcard")
	}
	defer func() {
		// ServeMux.Handle panics on a bad or conflicting pattern.
		if p := recover(); p != nil {
			err = cfg(fmt.Sprint(p))
		}
	}()
	h := s.wrap(rt)
	s.mux.Handle(rt.Pattern, h)
	s.router.mounted(rt.Pattern, h)
	s.routes = append(s.routes, RouteInfo{Pattern: rt.Pattern, Op: rt.Op, Access: rt.Access})
	return nil
}

// RouteInfo describes a mounted route.
type RouteInfo struct {
	Pattern string
	Op      string
	Access  Access
}

// Routes returns the server's routes in the order they were mounted, for
// tests and documentation that walk every route.
func (s *Server) Routes() []RouteInfo { return slices.Clone(s.routes) }

// wrap puts a route's handler behind the middleware, then the loopback
// guard and the refusal of an invalid tenant name, authentication and the
// admission middleware, in that order: a request the guard or the tenant's
// validation refuses is measured and traced like any other answer. A valid
// tenant is in the request's reqctx.Info before the middleware runs.
func (s *Server) wrap(rt Route) http.Handler {
	h := rt.Handler
	// What a loopback admin listener serves without a token is served to
	// loopback requests only; the health routes say nothing worth taking.
	guard := s.loopback && rt.Access == AccessPublic && rt.Op != "livez" && rt.Op != "readyz" && rt.Op != "openapi"
	if rt.Access != AccessPublic {
		if s.limiter != nil {
			h = s.limiter.Middleware(TenantOf, h)
		}
		h = s.authenticate(rt.Access, h)
	}
	if guard || rt.Access == AccessTenant {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if guard {
				if err := loopbackRequest(r); err != nil {
					s.writeError(w, r, err)
					return
				}
			}
			if info := reqctx.From(r.Context()); rt.Access == AccessTenant && (info == nil || info.Tenant == "") {
				if err := doc.ValidateTenant(pathValue(r, "tenant")); err != nil {
					s.writeError(w, r, err)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	// The health routes are a load balancer's, polled every few seconds:
	// neither measured nor traced. Every other answer is, the 404s and
	// 405s of paths and methods no route serves included.
	if rt.Op != "livez" && rt.Op != "readyz" {
		for i := len(s.middleware) - 1; i >= 0; i-- {
			h = s.middleware[i](h)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqctx.From(r.Context())
		if info == nil { // not served through Server.ServeHTTP; cannot happen
			info = &reqctx.Info{}
		}
		info.Op = rt.Op
		if rt.Pattern == "/" {
			// A 405 of a path some route serves with another method is
			// measured under that route, not with the 404s of unknown paths.
			if _, p := s.allowed(r); p != "" {
				r.Pattern = p
			}
		}
		if rt.Access == AccessTenant {
			if t := pathValue(r, "tenant"); doc.ValidateTenant(t) == nil {
				info.Tenant = t
			}
		}
		h.ServeHTTP(w, r)
	})
}

// authenticate serves next only to requests allowed the access, and marks
// them authenticated in their reqctx.Info (telemetry gives only those a
// tenant row of their own).
func (s *Server) authenticate(access Access, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqctx.From(r.Context())
		if err := s.auth.authorize(r, access, TenantOf(r)); err != nil {
			// An admin token naming no tenant the node serves did
			// authenticate: its 404 is not a failure to.
			if s.authFailed != nil && fault.ClassOf(err) != fault.NotFound {
				if ok, wait := s.authFailed(); !ok {
					err = authBudgetSpent(err, wait)
					if info != nil {
						info.Shed = true // the node's answer to a flood: its log lines are thinned
					}
				}
			}
			s.writeError(w, r, err)
			return
		}
		if info != nil {
			info.Authenticated = true
		}
		next.ServeHTTP(w, r)
	})
}

// TenantOf returns the tenant a request addresses: the {tenant} path value of
// a tenant route, syntactically valid; authenticated only inside
// [Admission.Limiter] and the handler. It is "" on other routes and before
// routing.
func TenantOf(r *http.Request) string {
	if info := reqctx.From(r.Context()); info != nil {
		return info.Tenant
	}
	return ""
}

// ServeHTTP gives the request an id, serves it, and logs it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.deadline != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		var cancel context.CancelFunc
		ctx, cancel = s.deadline(r)
		defer cancel()
	}
	x, r := s.begin(ctx, w, r)
	defer s.finish(x, r)
	if s.refuseOverLimit(x, r) {
		return
	}
	if r.ContentLength != 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodDelete) {
		leaveBody(x) // no route reads the body of these
	}
	if v, ok := r.Header[resilience.TimeoutHeader]; ok {
		if _, valid := resilience.ParseTimeout(v[0]); !valid || len(v) > 1 {
			// Ignored, the request would run under the node's default
			// deadline while the client believes it set its own.
			s.writeError(x, r, invalid("route", resilience.TimeoutHeader+" "+strconv.Quote(bound(strings.Join(v, ", "), 64))+
				": want one positive duration (250ms, 2s) or number of seconds, at most 24h"))
			return
		}
	}

	if r.Method == "PRI" && r.RequestURI == "*" {
		// HTTP/2's connection preface without TLS (h2c), which net/http
		// hands on as a request.
		s.writeError(x, r, invalid("route", "HTTP/2 is not served (here its cleartext preface, h2c): use HTTP/1.1"))
		return
	}
	if r.RequestURI == "*" || !strings.HasPrefix(r.URL.Path, "/") {
		// ServeMux would answer with a bare 400.
		s.writeError(x, r, invalid("route", "the request target must be an absolute path"))
		return
	}
	p := r.URL.EscapedPath()
	if strings.HasPrefix(p, "/v1/") && !canonical(p) {
		// ServeMux would answer with a redirect to the cleaned path, which
		// for a document names another key.
		s.writeError(x, r, invalid("route",
			"path is not canonical: escape '/' in keys as %2F and '.' as %2E"))
		return
	}
	if h, pattern, tenant, key, ok := s.router.route(r.Method, p); ok {
		r.Pattern = pattern
		x.routed, x.tenant, x.key = true, tenant, key
		h.ServeHTTP(x, r)
		return
	}
	s.mux.ServeHTTP(x, r)
}

// begin makes the exchange of a request whose context is ctx: it gives the
// request its id (the client's X-Request-ID if sane, else a new one),
// echoes it in X-Request-Id, and returns r with a context carrying the
// exchange.
// Both listeners begin requests here, so their ids follow one rule.
func (s *Server) begin(ctx context.Context, w http.ResponseWriter, r *http.Request) (*exchange, *http.Request) {
	x := &exchange{w: w, start: s.now()}
	id, ok := sanitizeRequestID(r.Header.Get("X-Request-Id"))
	if !ok {
		id = s.ids.next()
	}
	x.info.ID = id
	x.info.Start = x.start // for the tracing middleware: one clock read per request, not two
	x.hdr[0] = id
	w.Header()["X-Request-Id"] = x.hdr[0:1:1]
	return x, r.WithContext(reqctx.With(context.WithValue(ctx, exchangeKey{}, x), &x.info))
}

// canonical reports whether ServeMux would leave an escaped path alone: no
// empty, "." or ".." segments.
func canonical(p string) bool {
	for i := 0; i < len(p); {
		if p[i] != '/' {
			i++
			continue
		}
		j := i + 1
		for j < len(p) && p[j] != '/' {
			j++
		}
		seg := p[i+1 : j]
		last := j == len(p)
		if seg == "." || seg == ".." || (seg == "" && !last) {
			return false
		}
		i = j
	}
	return true
}

// HTTPServer returns an http.Server for s listening on addr, with its
// timeouts and header limit set and its own errors logged through the
// server's logger.
func (s *Server) HTTPServer(addr string) *http.Server {
	t := s.timeouts
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    t.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnContext:       connContext,
	}
}

// Serve accepts connections on ln and serves them, through [Server.Listener],
// with the http.Server of [Server.HTTPServer], until [Server.Shutdown] or
// [Server.Close]; it then returns nil. Any other error is the listener's
// failure. Call it once per server.
func (s *Server) Serve(ln net.Listener) error {
	err := s.httpServer(ln.Addr().String()).Serve(s.Listener(ln))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for the requests in
// flight until ctx ends; if it ends first, the connections left are
// closed and ctx's error is returned. It may be called before Serve, which
// then returns at once.
func (s *Server) Shutdown(ctx context.Context) error {
	hs := s.httpServer("")
	s.endStreams()
	if err := hs.Shutdown(ctx); err != nil {
		hs.Close() // the drain timed out: cut what is left
		return err
	}
	return s.waitLingering(ctx)
}

// waitLingering waits, until ctx ends, for the connections lingerClose
// keeps after an answer; each closes within shutdownLinger.
func (s *Server) waitLingering(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.lingering.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the listener and every connection at once, for a node that
// fails to start after it began serving.
func (s *Server) Close() error { return s.httpServer("").Close() }

// httpServer is the one http.Server of Serve and Shutdown, made by the
// first of them to run.
func (s *Server) httpServer(addr string) *http.Server {
	s.hsOnce.Do(func() { s.hs = s.HTTPServer(addr) })
	return s.hs
}

// SetDraining makes /readyz answer 503 from now on, so load balancers stop
// sending new requests while in-flight ones finish. It cannot be undone.
func (s *Server) SetDraining() {
	s.draining.Store(true)
}

// endStreams ends every ingest stream at its next read: the drain has
// begun, and a stream would hold it for as long as the client sends.
func (s *Server) endStreams() {
	s.drainOnce.Do(func() { close(s.drained) })
}

// Drain is graceful shutdown: SetDraining, then hs.Shutdown(ctx), which
// stops accepting connections and waits for in-flight requests until ctx
// ends. The caller closes the store afterwards.
func (s *Server) Drain(ctx context.Context, hs *http.Server) error {
	s.SetDraining()
	s.endStreams()
	if err := hs.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fault.E(fault.Unknown, fault.Context{Op: "server.drain"}, err)
	}
	if err := s.waitLingering(ctx); err != nil {
		return fault.E(fault.Unknown, fault.Context{Op: "server.drain"}, err)
	}
	return nil
}

func (s *Server) livez(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = jsonContentType
	io.WriteString(w, `{"status":"live"}`+"\n")
}

// readiness is what /readyz says on both listeners: "draining",
// "store_failed", "identity_conflict" or "starting" (503), "catching_up" (503, or 200 with
// ServeWhileCatchingUp) with the tenants still catching up, or "ready".
func (s *Server) readiness() (status string, code int, catchingUp []string) {
	switch {
	case s.draining.Load():
		return "draining", http.StatusServiceUnavailable, nil
	case s.failed != nil && s.failed():
		return "store_failed", http.StatusServiceUnavailable, nil
	case s.conflict != nil && s.conflict():
		return "identity_conflict", http.StatusServiceUnavailable, nil
	case s.ready != nil && !s.ready():
		return "starting", http.StatusServiceUnavailable, nil
	}
	if s.catchingUp != nil {
		catchingUp = s.catchingUp()
	}
	switch {
	case len(catchingUp) == 0:
		return "ready", http.StatusOK, nil
	case s.serveCU:
		return "ready", http.StatusOK, catchingUp
	}
	return "catching_up", http.StatusServiceUnavailable, catchingUp
}

// readyz is not logged as a failure when it says 503: that is its job.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if x := exchangeFrom(r.Context()); x != nil {
		x.quiet = true
	}
	status, code, ts := s.readiness()
	if !s.readyzNames {
		ts = nil
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	w.WriteHeader(code)
	if ts == nil {
		io.WriteString(w, `{"status":"`+status+`"}`+"\n")
		return
	}
	w.Write(readyzBody(status, ts))
}

// readyzBody is the /readyz body of a node with tenants catching up:
// {"status":…,"catching_up":[…]}, on the admin listener; the API's says
// only the status.
func readyzBody(status string, catchingUp []string) []byte {
	b := append([]byte(`{"status":`), appendJSONString(nil, status)...)
	b = append(b, `,"catching_up":[`...)
	for i, t := range catchingUp {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t)
	}
	return append(b, "]}\n"...)
}

// notFound answers a request no route took: 405 with the methods the
// path is served with, when some route serves it with another method
// (ServeMux would say so itself, but the catch-all "/" takes every method
// first), else 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	// wrap named the route that serves the path with other methods, if
	// one does: a 404 of an unknown path does not look the routes up again.
	if r.Pattern != "/" {
		if allow, _ := s.allowed(r); allow != "" {
			s.notAllowed(allow).ServeHTTP(w, r)
			return
		}
	}
	// The path as sent: decoded, a %2F would show as the slash whose
	// absence from the route is the reason there is none.
	s.writeError(w, r, fault.New(fault.NotFound, fault.Context{Op: "route"}, "no route for "+bound(r.URL.EscapedPath(), maxLogField)))
}

// allowed lists the methods a route serves r's path with, and the pattern
// of the first such route; "" when none does.
func (s *Server) allowed(r *http.Request) (allow, pattern string) {
	var methods []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := *r
		probe.Method = m
		if _, p := s.mux.Handler(&probe); p != "" && p != "/" {
			methods = append(methods, m)
			if pattern == "" {
				pattern = p
			}
		}
	}
	if len(methods) == 0 || slices.Contains(methods, r.Method) {
		return "", "" // served with its own method elsewhere: not a method problem
	}
	return strings.Join(methods, ", "), pattern
}

// NotAllowed answers every request with the JSON 405 naming the methods
// allow lists (and the Allow header), for a handler that mounts routes of
// its own (the console).
func (s *Server) NotAllowed(allow string) http.Handler { return s.notAllowed(allow) }

func (s *Server) notAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &httpError{
			status: http.StatusMethodNotAllowed, code: "method_not_allowed", allow: allow,
			err: fault.New(fault.Invalid, fault.Context{Op: "route"}, "method "+r.Method+" not allowed; use "+allow),
		})
	})
}
