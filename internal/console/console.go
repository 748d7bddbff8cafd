package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/reqctx"
)

//go:embed web
var webFS embed.FS

// Node is what the console reads of the node beyond the server's
// interfaces. The node implements it.
type Node interface {
	// Tenants lists the tenants the node serves or holds, by name, with
	// their conflict policy and document count (up to MaxCount).
	Tenants(ctx context.Context) ([]Tenant, error)
	// Document returns one document's version; fault.NotFound when the
	// key was never written.
	Document(ctx context.Context, tenant, key string) (Document, error)
	// StoreBytes is the size of the node's data directory on disk.
	StoreBytes() int64
	// Ancestor returns a common ancestor of key's open siblings whose
	// body the node still holds (a base kept for a three-way merge, or
	// the siblings' shared parent in the conflict history): a live
	// version every sibling descends from, the nearest such when several
	// are known. ok is false when none is known; fault.NotFound when the
	// document has no open siblings.
	Ancestor(ctx context.Context, tenant, key string) (a Ancestor, ok bool, err error)
}

// Ancestor is a common ancestor of a sibling set, with its body.
type Ancestor struct {
	// SetETag is the ETag of the sibling set it was found for: the page
	// shows it only against that set.
	SetETag string
	ETag    string
	Writer  uint64
	Time    time.Time
	// Source says where the node kept it, for people: "the base recorded
	// with backend b" or "the conflict history".
	Source string
	Body   []byte
}

// MaxCount bounds the documents counted per tenant (see the package doc).
const MaxCount = 10000

// Tenant is a row of the tenants page.
type Tenant struct {
	Name   string `json:"name"`
	Policy string `json:"policy"`
	// Docs is the number of live documents, at most MaxCount; AtLeast
	// marks a count that stopped there.
	Docs    int  `json:"docs"`
	AtLeast bool `json:"docs_at_least,omitempty"`
}

// Document is one document's version as the documents page shows it.
type Document struct {
	Key      string            `json:"key"`
	ETag     string            `json:"etag"`
	Vector   map[string]uint64 `json:"vector"` // incarnation (hex) → counter
	HLC      string            `json:"hlc"`
	Writer   string            `json:"writer"` // incarnation (hex)
	Deleted  bool              `json:"deleted"`
	Siblings bool              `json:"siblings"`
	Body     []byte            `json:"-"`
}

// Limits are the node's request limits, shown on the tenants page: each
// tenant has the same.
type Limits struct {
	MaxInFlight       int     `json:"max_in_flight"`
	TenantMaxInFlight int     `json:"tenant_max_in_flight"`
	TenantRate        float64 `json:"tenant_rate"`
	TenantBurst       int     `json:"tenant_burst"`
}

// Options configure a [Console].
type Options struct {
	// API is the API listener's server: resolutions go through its
	// resolve path, and errors are answered with its error body.
	API  *server.Server
	Docs server.Docs
	// Serves reports whether the node serves a tenant: one it is
	// configured with, or one the API's Auth.Serves says it serves; nil:
	// every valid name.
	Serves     func(ctx context.Context, tenant string) bool
	Node       Node
	Reconciler server.Reconciler // nil: no replication page data
	Chaos      server.Chaos      // nil unless --enable-chaos
	Quarantine server.Quarantine // nil: none listed
	// Registry is the node's Prometheus registry (telemetry.Metrics.Registry).
	Registry prometheus.Gatherer
	// Tenants is the per-tenant request table (telemetry.Metrics.Tenants),
	// keyed by tenant.
	TenantRequests func() map[string]int64
	Limits         Limits
	// IsAdmin reports whether a token is an admin token (server.Server.IsAdmin).
	IsAdmin func(token string) bool
	// AuthFailed is the node's budget of failed authentications
	// (server.Options.AuthFailed): a wrong token at sign-in spends it.
	AuthFailed func() (ok bool, retryAfter time.Duration)
	// Open lets loopback clients in without a token: set it only for a
	// node without an admin token whose admin listener is on loopback.
	Open bool
	// SecureCookie marks the session cookie Secure: set it when the
	// listener is beyond loopback or serves TLS.
	SecureCookie bool
	NodeID       string
	Version      string
	Started      time.Time
	Now          func() time.Time // [time.Now]
	SessionTTL   time.Duration    // [8h]
	// Logger receives a line for each sign-in and each action taken from
	// the console (a reconciliation run, a resolution, a chaos change);
	// nil is slog.Default().
	Logger *slog.Logger
}

// Console is the web console's handler for the /console/ subtree.
type Console struct {
	o     Options
	mux   *http.ServeMux
	pages *template.Template
	sess  *sessions
	rates *rates
	// tenantRows caches the tenants page's rows (data.go).
	tenantRows tenantRows
}

// New checks o and returns the console.
func New(o Options) (*Console, error) {
	if o.API == nil || o.Docs == nil || o.Node == nil || o.Registry == nil || o.IsAdmin == nil {
		return nil, fault.New(fault.Config, fault.Context{Op: "console.new"}, "Options.API, Docs, Node, Registry and IsAdmin are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	pages, err := template.ParseFS(webFS, "web/*.html")
	if err != nil {
		return nil, fault.E(fault.Config, fault.Context{Op: "console.new"}, err)
	}
	c := &Console{o: o, mux: http.NewServeMux(), pages: pages, sess: newSessions(o.Now, o.SessionTTL), rates: &rates{}}
	static, _ := fs.Sub(webFS, "web/static")
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /console/signin", c.signinPage)
	c.mux.HandleFunc("POST /console/signin", c.signin)
	c.mux.Handle("POST /console/signout", c.guard(true, c.signout))
	c.mux.Handle("GET /console/{$}", http.RedirectHandler("/console/overview", http.StatusSeeOther))
	for _, p := range pageNames {
		c.mux.Handle("GET /console/"+p, c.guard(false, c.page(p)))
	}
	c.api("GET /console/api/overview", c.overview)
	c.api("GET /console/api/tenants", c.tenants)
	c.api("GET /console/api/docs", c.listDocs)
	c.api("GET /console/api/doc", c.getDoc)
	c.api("GET /console/api/conflicts", c.listConflicts)
	c.api("GET /console/api/conflict", c.getConflict)
	c.api("POST /console/api/resolve", c.resolve)
	c.api("GET /console/api/replication", c.replication)
	c.api("POST /console/api/reconcile", c.reconcile)
	c.api("GET /console/api/chaos", c.chaosStatus)
	c.api("POST /console/api/chaos", c.chaosSet)
	// Without these, another method on a POST-only path would reach the
	// catch-all below and be a 404, as if the path did not exist.
	for _, path := range []string{"/console/signout", "/console/api/resolve", "/console/api/reconcile"} {
		c.mux.Handle(path, o.API.NotAllowed(http.MethodPost))
	}
	c.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, fault.New(fault.NotFound, fault.Context{Op: "console"}, "no console page "+r.URL.Path))
	})
	return c, nil
}

// pageNames are the console's pages, in the order of its navigation.
var pageNames = []string{"overview", "tenants", "documents", "conflicts", "replication", "chaos"}

// Routes lists the console's paths, for the API's description.
func Routes() []string {
	rts := []string{"GET /console/", "GET /console/static/{file}", "GET /console/signin", "POST /console/signin", "POST /console/signout"}
	for _, p := range pageNames {
		rts = append(rts, "GET /console/"+p)
	}
	return append(rts,
		"GET /console/api/overview", "GET /console/api/tenants", "GET /console/api/docs", "GET /console/api/doc",
		"GET /console/api/conflicts", "GET /console/api/conflict", "POST /console/api/resolve",
		"GET /console/api/replication", "POST /console/api/reconcile", "GET /console/api/chaos", "POST /console/api/chaos")
}

// api mounts a JSON endpoint: signed in, and with the CSRF token unless
// it is a GET.
func (c *Console) api(pattern string, h func(http.ResponseWriter, *http.Request, *session)) {
	state := !strings.HasPrefix(pattern, "GET ")
	c.mux.Handle(pattern, c.guard(state, h))
}

// ServeHTTP serves the /console/ subtree with the console's security
// headers on every answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer a browser sends
	// "Origin: null" on form posts, which sameOrigin refuses.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

// guard serves h only within a session, and a state-changing request only
// with the session's CSRF token from the same origin. Without a session a
// page redirects to the sign-in page and a JSON endpoint answers 401.
func (c *Console) guard(state bool, h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.sess.lookup(r)
		if s == nil {
			if strings.HasPrefix(r.URL.Path, "/console/api/") || r.Method != http.MethodGet {
				c.fail(w, r, fault.New(fault.Unauthorized, fault.Context{Op: "console"}, "sign in to the console first (POST /console/signin)"))
				return
			}
			http.Redirect(w, r, "/console/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if state {
			if err := c.checkCSRF(r, s); err != nil {
				c.fail(w, r, err)
				return
			}
		}
		h(w, r, s)
	})
}

// fail answers err with the API's error body and status.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	c.o.API.WriteError(w, r, err)
}

// logAction logs what a console user did, at Info: the console's actions
// change the node (and on an open console anyone on the machine may take
// them), so each leaves a line with the request id and the client's
// address.
func (c *Console) logAction(r *http.Request, msg string, attrs ...slog.Attr) {
	attrs = append(attrs, slog.String("request_id", reqctx.RequestID(r.Context())), slog.String("remote", r.RemoteAddr))
	c.o.Logger.LogAttrs(r.Context(), slog.LevelInfo, msg, attrs...)
}

// loopback reports whether the request came from a loopback address.
func loopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	return err == nil && server.LoopbackHost(host)
}

// shell is what the page template reads.
type shell struct {
	Page, Title string
	Pages       []string
	CSRF        string
	NodeID      string
	Chaos       bool
	Error       string
	Next        string
	Open        bool
}

// page serves one of the console's pages: the shell, which the script
// fills from the JSON endpoints.
func (c *Console) page(name string) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		c.render(w, http.StatusOK, "page.html", shell{Page: name, Title: title(name), Pages: pageNames,
			CSRF: s.csrf, NodeID: c.o.NodeID, Chaos: c.o.Chaos != nil})
	}
}

func title(page string) string { return strings.ToUpper(page[:1]) + page[1:] }

func (c *Console) render(w http.ResponseWriter, code int, name string, data shell) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	c.pages.ExecuteTemplate(w, name, data) // a failed write is the client's problem
}
