package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/internal/cache"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/docs"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/gcfloor"
	"github.com/cairnstore/cairn/internal/ingest"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/resp"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
	"github.com/cairnstore/cairn/internal/telemetry"
	"github.com/cairnstore/cairn/internal/tlscert"
)

// Config is everything a node needs. The CLI fills it from flags, the
// environment and a config file.
type Config struct {
	DataDir     string
	Listen      string // the API address
	AdminListen string // metrics, pprof, health; "" disables it
	RespListen  string // the Redis-protocol front (resp.go); "" disables it
	// RespMaxClients bounds its connections open at once (0:
	// resp.DefaultMaxClients).
	RespMaxClients int
	// RespAuthTimeout closes its connections that have not signed in
	// within it (0: resp.DefaultAuthTimeout).
	RespAuthTimeout time.Duration
	// RespIdleTimeout closes its signed-in connections that send no
	// complete command for it (0: resp.DefaultIdle; negative: never).
	RespIdleTimeout time.Duration
	// MaxConns bounds the API's connections open at once (0:
	// server.DefaultMaxConns).
	MaxConns     int
	NodeID       string
	Durability   store.Durability
	CacheBytes   int64
	MaxBodyBytes int64
	// KeyFilterBytes caps the store's key filter (store.Options.KeyFilterBytes:
	// 0 is the default, negative turns it off).
	KeyFilterBytes int64
	Auth           server.Auth
	Logger         *slog.Logger
	// Trace configures tracing and metrics; the zero value traces nothing
	// (unless OTEL_TRACES_EXPORTER says otherwise) and keeps metrics.
	Trace telemetry.Config
	// Limits bound requests in flight, globally and per tenant, and each
	// tenant's request rate; with MaxInFlight 0, resilience's defaults.
	Limits resilience.LimiterConfig
	// Ingest bounds the bulk-ingestion streams.
	Ingest server.IngestLimits
	// RequestTimeout is the default deadline of a request [5s]; a client may
	// ask for less (or up to MaxRequestTimeout) with X-Request-Timeout.
	RequestTimeout, MaxRequestTimeout time.Duration
	// Replication names the backends to replicate to (replicate.go).
	Replication Replication
	// ServeWhileCatchingUp makes /readyz answer 200 while tenants are
	// still catching up with a backend (catchup.go), so that a load
	// balancer sends requests to a node that may not hold every document
	// yet: reads of those read through, conditional writes answer 503.
	ServeWhileCatchingUp bool
	// Chaos, when not nil, turns on the fault simulator (chaos.go).
	Chaos *Chaos
	// TLS, when not nil, serves both listeners over TLS 1.2 or later (tls.go).
	TLS *TLS
	// Reload, when not nil, delivers requests to read the TLS certificate
	// files again (the CLI passes SIGHUP).
	Reload <-chan os.Signal

	// MemoryLimit, when positive, is the whole process's memory limit: the
	// node divides it between the Go heap, Pebble and the key filter, and
	// derives the document cache's default from it (memory.go).
	MemoryLimit int64
	// GCHeapFloor, when positive, keeps the garbage collector's heap goal
	// at least this many bytes while the live heap is smaller (package
	// gcfloor), at most a quarter of the Go heap's share of MemoryLimit.
	// It sets the process's GC percent: the CLI sets it for 'cairn serve'
	// unless GOGC is set, and a process running several nodes (tests)
	// leaves it zero.
	GCHeapFloor int64

	// Test seams (health_test.go): the store's file system (nil: the real
	// one) and the clocks under its hybrid logical clock (nil: time.Now
	// and the monotonic clock).
	storeFS vfs.FS
	wall    func() time.Time
	elapsed func() time.Duration
}

// Node is a running cairn node.
type Node struct {
	cfg   Config
	log   *slog.Logger
	store *store.Store
	cache *cache.Cache
	clock *doc.Clock // the store's hybrid logical clock, watched (health.go)
	docs  *docs.Service
	repl  *replicator // nil until the store is open; see replicate.go
	tel   *telemetry.Telemetry
	// telSet is tel for the store's goroutines, which may run before
	// setupTelemetry sets it.
	telSet atomic.Pointer[telemetry.Telemetry]
	// limiter sheds load past the configured limits (set by newAPI).
	limiter *resilience.Limiter
	api     *server.Server
	admin   *server.Server // the admin listener's routes
	ready   atomic.Bool    // false until started and again once Shutdown begins
	// storeDown is set when the store failed and refuses every request
	// until a restart (health.go).
	storeDown atomic.Bool
	chaos     *chaosState // nil unless Config.Chaos; see chaos.go

	certs *tlscert.Reloader // nil unless Config.TLS; see tls.go
	// reloadCtx ends when Shutdown begins; it stops watchReload (tls.go).
	reloadCtx  context.Context
	stopReload context.CancelFunc

	servers        []*server.Server // those serving, API first
	resp           *resp.Server     // nil unless Config.RespListen (resp.go)
	respLn         net.Listener
	apiLn, adminLn net.Listener
	serving        sync.WaitGroup // the Serve goroutines and watchReload
	serveErr       chan error     // the first unexpected Serve error

	budget *MemoryBudget          // nil without Config.MemoryLimit; see memory.go
	bodies *resilience.ByteBudget // request bodies in flight, bounded under Config.MemoryLimit; nil: none (memory.go)
	gc     *gcfloor.Tuner         // nil without Config.GCHeapFloor
}

// Start opens the store, starts replication to the configured backends and
// serves the API and admin listeners, in that order. ctx bounds the start
// (opening the backends, which checks an S3 bucket, and the telemetry
// exporters); once Start returns, the node runs until Shutdown whatever
// ctx does.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := CheckAdminExposure(cfg); err != nil {
		return nil, err
	}
	if err := checkNodeID(cfg.NodeID); err != nil {
		return nil, err
	}
	n = &Node{cfg: cfg, log: log, serveErr: make(chan error, 2)}
	defer func(n *Node) { // n, not the result, which a failed return sets to nil
		if err != nil {
			if n.repl != nil {
				n.repl.failedStart = true // its claims are withdrawn (claim.go)
			}
			n.closeData(false)
			if n.tel != nil {
				n.tel.Shutdown(context.Background())
			}
			n.gc.Stop()
		}
	}(n)
	if err := n.setupChaos(); err != nil {
		return nil, err
	}
	if err := n.applyMemoryLimit(); err != nil {
		return nil, err
	}
	n.startGCFloor()
	cfg = n.cfg
	// The largest document, its key and ETag must fit a shard: a small
	// cache split many ways would never hold one.
	n.cache = cache.New(cache.Options{MaxBytes: cfg.CacheBytes,
		MaxEntryBytes: cmp.Or(cfg.MaxBodyBytes, server.DefaultMaxBodyBytes) + 2048})
	n.clock = n.newClock()
	feed := newChangeFeed()
	n.store, err = store.Open(cfg.DataDir, store.Options{
		NodeID: cfg.NodeID, Durability: cfg.Durability, Watcher: docs.NewFollower(n.cache, feed.mark), Failpoint: n.failpoint(),
		KeyFilterBytes: cfg.KeyFilterBytes, CacheSize: n.budget.pebble(), MemTableSize: n.budget.memTable(),
		OnCommit: n.onCommit,                                                                // a method value: bound now, not to the result a failed start sets to nil
		FS:       cfg.storeFS, Clock: n.clock, OnFail: n.storeFailed, OnFatal: n.storeFatal, // health.go
		Logger: n.log,
	})
	if err != nil {
		return nil, n.storeOpenFailed(err)
	}
	if err := n.setupTelemetry(ctx); err != nil {
		return nil, err
	}
	if _, _, ok := n.store.Room(); ok {
		if err := n.tel.Metrics.RegisterDisk(func() (free, reserve int64) {
			free, reserve, _ = n.store.Room()
			return free, reserve
		}); err != nil {
			return nil, err
		}
	}
	feed.self.Store(n.store.Identity().Incarnation)
	if err := n.startReplication(ctx, feed); err != nil {
		return nil, err
	}
	n.docs = docs.New(n.store, n.cache, n.repl.catchingUpWith()) // catchup.go
	n.cfg.Auth.Serves = n.servesTenant
	if n.api, err = n.newAPI(); err != nil {
		return nil, err
	}
	if err := n.tel.Metrics.RegisterConns(n.api.OpenConns); err != nil {
		return nil, err
	}
	if n.admin, err = n.newAdmin(); err != nil { // admin.go
		return nil, err
	}
	if err := n.setupTLS(); err != nil { // tls.go
		return nil, err
	}
	if err := n.listen(); err != nil {
		return nil, err
	}
	if err := n.startRESP(); err != nil { // resp.go
		for _, srv := range n.servers {
			srv.Close()
		}
		return nil, err
	}
	// After the RESP front is made: the count reads it.
	if err := n.tel.Metrics.RegisterShed(func() telemetry.Shed {
		var s telemetry.Shed
		s.Busy, s.Tenant = n.limiter.Shed()
		s.Conns = n.api.RefusedConns()
		if n.resp != nil {
			s.Conns += n.resp.RefusedClients()
		}
		s.Memory = n.bodies.Refused()
		return s
	}); err != nil {
		for _, srv := range n.servers {
			srv.Close()
		}
		n.shutdownRESP(context.Background())
		return nil, err
	}
	n.watchReload()
	n.warnCleartext()
	n.warnFileLimit() // files.go
	n.warnOpenToOthers()
	n.warnUnnamedTenants(ctx)
	if n.repl.startClaims != nil {
		n.repl.startClaims(ctx)
	}
	n.ready.Store(true)
	id := n.store.Identity()
	log.Info("cairn node started", "node_id", id.NodeID, "incarnation", fmt.Sprintf("%016x", id.Incarnation),
		"api", n.Addr(), "admin", n.AdminAddr(), "resp", n.RESPAddr(), "data_dir", cfg.DataDir, "durability", cfg.Durability.String(),
		"trace_exporter", n.tel.Exporter())
	return n, nil
}

// servesTenant is server.Auth.Serves: whether the node holds documents
// (or deletions) of tenant, or one of its engines learned of it in a
// backend. A store that fails to answer says yes: the request then meets
// the store's own error rather than a 404.
func (n *Node) servesTenant(ctx context.Context, tenant string) bool {
	for range n.store.List(ctx, tenant, store.ListOptions{Limit: 1, KeysOnly: true, Tombstones: true}) {
		return true
	}
	for _, e := range n.repl.engines {
		if e.Knows(tenant) {
			return true
		}
	}
	return false
}

// onCommit is the store's OnCommit: it may run before setupTelemetry.
func (n *Node) onCommit(size int, d time.Duration) {
	if tel := n.telSet.Load(); tel != nil {
		tel.Metrics.OnCommit(size, d)
	}
}

func (n *Node) setupTelemetry(ctx context.Context) error {
	tc := n.cfg.Trace
	tc.NodeID = n.store.Identity().NodeID
	tc.Logger = n.log
	tel, err := telemetry.Setup(ctx, tc)
	if err != nil {
		return err
	}
	n.tel = tel
	n.telSet.Store(tel)
	if n.chaos != nil {
		tel.Metrics.SetChaosBallast(int64(len(n.chaos.ballast)))
	}
	if err := tel.Metrics.RegisterClock(n.clock.Ahead); err != nil {
		return err
	}
	return tel.Metrics.RegisterCache(func() telemetry.CacheStats { return telemetry.CacheStats(n.cache.Stats()) })
}

// newAPI builds the HTTP API: tracing and RED metrics outermost (so refused
// and shed requests are seen), then the server's admission in its one
// order (server.Admission) with the limiter: failed authentications
// against the node's budget of them, then the node's and the tenant's
// limits. An admin token acting on a tenant is charged to that tenant: it
// is work done on the tenant's data. The request deadline is set before
// all of it, as the server takes the request.
func (n *Node) newAPI() (*server.Server, error) {
	limiter, err := resilience.NewLimiter(n.cfg.limits())
	if err != nil {
		return nil, err
	}
	n.limiter = limiter
	deadlines := resilience.Deadlines{Default: n.cfg.RequestTimeout, Max: n.cfg.MaxRequestTimeout}
	return server.New(server.Options{
		Docs:             n.docs,
		Auth:             n.cfg.Auth,
		MaxBodyBytes:     n.cfg.MaxBodyBytes,
		Bodies:           n.bodies,
		MaxConns:         n.cfg.MaxConns,
		Logger:           n.log,
		Ready:            n.isReady, // health.go
		Failed:           n.storeDown.Load,
		IdentityConflict: n.identityConflict,
		// catchup.go: readiness waits for the tenants restoring from a backend.
		CatchingUp:           n.catchingUpAtStart,
		ServeWhileCatchingUp: n.cfg.ServeWhileCatchingUp,
		Ingest:               &server.IngestOptions{Writer: n.store, Limits: n.cfg.Ingest, Counted: n.countIngest},
		Middleware:           []server.Middleware{n.tel.Middleware(nil)},
		Admission:            server.Admission{Limiter: limiter}, // its AuthFailed too
		// Each write's deadline reaches the store (a queued write gives
		// up), carried as a value: a write that does not wait arms no
		// timer (package deadline).
		Deadline: deadlines.Carry,
	})
}

// countIngest adds a finished ingest stream to the metrics and the tenant
// table.
func (n *Node) countIngest(tenant string, st ingest.Stats) {
	n.tel.Metrics.AddIngest(tenant, telemetry.IngestCounts{
		Records: st.Records, Bytes: st.Bytes, Malformed: st.Malformed, Oversize: st.Oversize, InvalidKey: st.Skipped})
}

func (c *Config) limits() resilience.LimiterConfig {
	if c.Limits.MaxInFlight == 0 {
		return resilience.DefaultLimiterConfig()
	}
	return c.Limits
}

func (n *Node) listen() error {
	var err error
	if n.apiLn, err = net.Listen("tcp", n.cfg.Listen); err != nil {
		return fault.E(fault.Config, fault.Context{Op: "node.listen"}, fmt.Errorf("--listen %s: %w", n.cfg.Listen, err))
	}
	n.apiLn = n.secure(n.apiLn)
	n.serve(n.api, n.apiLn)
	if n.cfg.AdminListen == "" {
		return nil
	}
	if n.adminLn, err = net.Listen("tcp", n.cfg.AdminListen); err != nil {
		n.api.Close()
		return fault.E(fault.Config, fault.Context{Op: "node.listen"}, fmt.Errorf("--admin-listen %s: %w", n.cfg.AdminListen, err))
	}
	n.adminLn = n.secure(n.adminLn)
	n.serve(n.admin, n.adminLn)
	return nil
}

// serve runs srv on ln until Shutdown; a listener that fails otherwise
// is reported on Err.
func (n *Node) serve(srv *server.Server, ln net.Listener) {
	n.servers = append(n.servers, srv)
	n.serving.Add(1)
	go func() {
		defer n.serving.Done()
		if err := srv.Serve(ln); err != nil {
			n.log.Error("listener failed", "addr", ln.Addr().String(), "err", err)
			select {
			case n.serveErr <- err:
			default:
			}
		}
	}()
}

// Addr is the API listener's address (useful with port 0).
func (n *Node) Addr() string { return n.apiLn.Addr().String() }

// AdminAddr is the admin listener's address, or "".
func (n *Node) AdminAddr() string {
	if n.adminLn == nil {
		return ""
	}
	return n.adminLn.Addr().String()
}

// Identity is the store's node identity.
func (n *Node) Identity() store.Identity { return n.store.Identity() }

// Err delivers a listener's failure while serving.
func (n *Node) Err() <-chan error { return n.serveErr }

// SetDraining makes both listeners' /readyz answer 503 "draining" from now
// on, while the node still serves every request: the delay before a drain
// (--drain-delay), for load balancers to take the node out. Shutdown calls
// it too. It cannot be undone.
func (n *Node) SetDraining() {
	n.ready.Store(false)
	for _, srv := range n.servers {
		srv.SetDraining()
	}
}

// ErrDrainTimedOut is in Shutdown's error when its ctx ended before the
// requests in flight did: they were cut.
var ErrDrainTimedOut = errors.New("the drain did not finish in time")

// ShutdownErrors splits Shutdown's error: whether the drain timed out, and
// the errors of its other steps (nil when none).
func ShutdownErrors(err error) (drainTimedOut bool, rest error) {
	steps := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		steps = j.Unwrap()
	}
	var others []error
	for _, e := range steps {
		if errors.Is(e, ErrDrainTimedOut) {
			drainTimedOut = true
		} else if e != nil {
			others = append(others, e)
		}
	}
	return drainTimedOut, errors.Join(others...)
}

// telemetryFlush bounds the exporters' flush at shutdown once the drain
// has used the whole of its time.
const telemetryFlush = 2 * time.Second

// Shutdown stops accepting requests, waits for in-flight ones until ctx
// ends, then closes the cache and the store. It returns the first error.
func (n *Node) Shutdown(ctx context.Context) error {
	n.SetDraining()
	if n.stopReload != nil {
		n.stopReload()
	}
	var errs []error
	drained := func(err error) {
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %v", ErrDrainTimedOut, err) // one %w: ShutdownErrors splits joins
		}
		errs = append(errs, err)
	}
	for _, srv := range n.servers {
		drained(srv.Shutdown(ctx))
	}
	drained(n.shutdownRESP(ctx))
	n.serving.Wait()
	errs = append(errs, n.closeData(true))
	if n.tel != nil {
		tctx := ctx
		if ctx.Err() != nil {
			// The drain used the whole of ctx: the spans and metrics of
			// the requests it cut are still worth their flush.
			var cancel context.CancelFunc
			tctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), telemetryFlush)
			defer cancel()
		}
		errs = append(errs, n.tel.Shutdown(tctx))
	}
	n.keepBallast()
	n.gc.Stop()
	return errors.Join(errs...)
}

// closeData stops replication (uploading the pending changes first when
// flush is set: a graceful stop), then closes the cache and the store: the
// engines read and write the store until Close returns.
func (n *Node) closeData(flush bool) error {
	var errs []error
	errs = append(errs, n.repl.close(flush))
	if n.cache != nil {
		errs = append(errs, n.cache.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

// checkNodeID refuses a --node-id that could not name the node's objects
// in the backends, where it would silently turn off the identity checks
// and the change feed (store.CheckNodeID).
func checkNodeID(id string) error {
	if err := store.CheckNodeID(id); err != nil {
		return fault.New(fault.Config, fault.Context{Op: "node.start"}, fmt.Sprintf("--node-id %q: %v", id, err))
	}
	return nil
}
