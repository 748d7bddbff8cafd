package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/pack"
	"github.com/cairnstore/cairn/internal/reconcile"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/resp"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// serveFlags are the settings of 'cairn serve'.
type serveFlags struct {
	config        string
	dataDir       string
	listen        string
	adminListen   string
	respListen    string
	respClients   int
	respAuth      time.Duration
	respIdle      time.Duration
	maxConns      int
	tenants       listFlag
	adminHash     listFlag
	nodeID        string
	durability    string
	cacheBytes    byteSize
	keyFilter     byteSize
	maxBody       byteSize
	logLevel      string
	logFormat     string
	drainTimeout  time.Duration
	drainDelay    time.Duration
	traceExporter string
	traceFile     string
	traceRatio    float64
	reqTimeout    time.Duration
	maxReqTimeout time.Duration
	maxInFlight   int
	tenantInFl    int
	tenantRate    float64
	backends      listFlag
	policies      listFlag
	reconcileIvl  time.Duration
	coalesce      time.Duration
	gcGrace       time.Duration
	gcInterval    time.Duration
	scrubRate     float64
	beConc        listFlag   // NAME=N
	beOps         listFlag   // NAME=RATE
	beBytes       listFlag   // NAME=SIZE
	chaos         chaosFlags // serve_chaos.go
	ingest        serveIngestFlags
	checkpointN   int
	packEvery     time.Duration
	packMinDocs   int
	packPart      byteSize
	tlsCert       string
	tlsKey        string
	serveCatchUp  bool // --serve-while-catching-up
	logLevelVar   *slog.LevelVar
	demoToken     string // the development token, when usingDevToken
	usingDevToken bool
	origin        origins // where each setting came from, for errors

	feedPoll      time.Duration
	fullRounds    bool
	feedRetention time.Duration

	memoryLimit byteSize // serve_memory.go
	cacheSet    bool     // --cache-bytes was given (flag, environment or config)
}

func newServeFlags() (*flag.FlagSet, *serveFlags) {
	f := &serveFlags{cacheBytes: 256 << 20, keyFilter: store.DefaultKeyFilterBytes, maxBody: 1 << 20, packPart: reconcile.DefaultPackPart}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&f.config, "config", "", "read settings from this JSON `file` (keys are the flag names; comments allowed; cairn config example prints one)")
	fs.StringVar(&f.dataDir, "data-dir", "./cairn-data", "the node's data `directory` (locked while serving)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7070", "API `address`")
	fs.StringVar(&f.adminListen, "admin-listen", "127.0.0.1:7071", "admin `address` (health, /metrics, pprof, tenant stats); empty disables it")
	fs.StringVar(&f.respListen, "resp-listen", "", "Redis-protocol (RESP2/RESP3) `address` (AUTH tenant token; docs/resp.md); empty disables it")
	fs.IntVar(&f.maxConns, "max-conns", server.DefaultMaxConns, "API (HTTP) `connections` open at once; a request on one more is answered 503 with Retry-After and its connection closed")
	fs.IntVar(&f.respClients, "resp-max-clients", resp.DefaultMaxClients, "Redis-protocol `connections` open at once; one more is answered '-ERR max number of clients reached' (Redis's maxclients)")
	fs.DurationVar(&f.respAuth, "resp-auth-timeout", resp.DefaultAuthTimeout, "how long a Redis-protocol connection may stay without signing in (AUTH, or HELLO with AUTH) before it is closed, TLS handshake included")
	fs.DurationVar(&f.respIdle, "resp-idle-timeout", resp.DefaultIdle, "how long a signed-in Redis-protocol connection may send no complete command before it is closed; 0: never (Redis's timeout 0)")
	fs.Var(&f.tenants, "tenant", "a tenant and the SHA-256 of its token, `NAME:HEX`; repeatable (environment: CAIRN_TENANTS, comma-separated)")
	fs.Var(&f.adminHash, "admin-token-sha256", "SHA-256 `hex` of the admin token; repeatable")
	fs.StringVar(&f.nodeID, "node-id", "", "this node's `name`, unique among the nodes sharing a backend, at most 100 bytes without spaces (default: kept in the data directory)")
	fs.StringVar(&f.durability, "durability", "sync", "`mode`: sync (fsync before every reply) or buffered (may lose recent writes on a crash)")
	fs.Var(&f.cacheBytes, "cache-bytes", "memory budget of the document cache (`size`, at least 1MiB, e.g. 256MiB; with a memory limit, a third of the Go heap's share of it unless given)")
	fs.Var(&f.keyFilter, "key-filter-bytes", "cap of the in-memory filter of document keys that spares a PUT creating a document its disk lookup (`size`; 10 bits a document, so 16MiB covers ~13 million, and serves up to twice that); 0 turns it off")
	fs.Var(&f.maxBody, "max-body-bytes", "largest document accepted (`size`)")
	fs.StringVar(&f.logLevel, "log-level", "info", "`level`: debug, info, warn or error (debug includes the access log)")
	fs.StringVar(&f.logFormat, "log-format", "json", "`format`: json or text")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", 15*time.Second, "how long SIGTERM waits for in-flight requests")
	fs.DurationVar(&f.drainDelay, "drain-delay", 0, "after SIGTERM, how long the node keeps serving new requests with /readyz answering 503, for load balancers to take it out of rotation, before it drains (0: drain at once)")
	fs.StringVar(&f.traceExporter, "trace-exporter", "", "`name`: none, console, json or otlp (empty: $OTEL_TRACES_EXPORTER, else none)")
	fs.StringVar(&f.traceFile, "trace-file", "", "`file` the json trace exporter appends to")
	fs.Float64Var(&f.traceRatio, "trace-sample-ratio", 1, "share of new traces sampled, in (0, 1]")
	fs.DurationVar(&f.reqTimeout, "request-timeout", 5*time.Second, "default deadline of a request")
	fs.DurationVar(&f.maxReqTimeout, "max-request-timeout", 30*time.Second, "longest deadline a client may ask for with X-Request-Timeout")
	fs.IntVar(&f.maxInFlight, "max-in-flight", 4096, "requests in flight on the node; beyond it: 503 with Retry-After")
	fs.IntVar(&f.tenantInFl, "tenant-max-in-flight", 1024, "requests in flight per tenant; beyond it: 429 with Retry-After")
	fs.Float64Var(&f.tenantRate, "tenant-rate", 100000, "requests per second per tenant (burst: twice that); beyond it: 429")
	fs.Var(&f.backends, "backend", "replicate to a backend, `NAME=fs:/path` or NAME=s3://bucket/prefix?endpoint=host:port&insecure=1 (credentials: AWS_* env); repeatable")
	fs.Var(&f.policies, "conflict-policy", "a tenant's conflict policy, `TENANT=lww|merge|merge/manual|manual` (default lww); repeatable")
	fs.Var(&f.beConc, "backend-concurrency", "at most N reconciler calls in flight to a backend, `NAME=N` (default 32); repeatable")
	fs.Var(&f.beOps, "backend-ops", "at most RATE reconciler calls per second to a backend, `NAME=RATE` (default unlimited); repeatable")
	fs.Var(&f.beBytes, "backend-bytes", "at most SIZE document bytes per second to and from a backend, `NAME=SIZE` e.g. s3=20MiB (default unlimited); repeatable")
	fs.DurationVar(&f.reconcileIvl, "reconcile-interval", 30*time.Second, "time between reconciliation passes over every tenant and backend; 0: only on demand")
	fs.DurationVar(&f.coalesce, "coalesce-window", reconcile.DefaultCoalesceWindow, "least time between two uploads of a tenant's changes: a key rewritten within it is uploaded once, at its latest version, and a change waits at most this long more; 0: upload every change at once")
	fs.DurationVar(&f.gcGrace, "gc-grace", reconcile.DefaultGrace, "how long a tombstone is kept after its delete before it is collected from the node and every backend; must exceed the longest partition of a node sharing a backend, plus --reconcile-interval; a catch-up pack older than half of it is not restored from")
	fs.DurationVar(&f.gcInterval, "gc-interval", 10*time.Minute, "time between passes of the tombstone collector, change-log trimming and conflict-history trimming; 0: never")
	f.chaos.register(fs)
	f.ingest.register(fs) // serve_ingest.go
	fs.DurationVar(&f.feedPoll, "feed-poll", reconcile.DefaultFeedPoll, "how often a node reads its peers' change feeds of each tenant (news of their writes); 0 turns the feed off (news waits for --reconcile-interval)")
	fs.DurationVar(&f.feedRetention, "feed-retention", 0, "how long a node keeps its own change-feed objects in a backend; never less than --gc-grace (0: --gc-grace)")
	fs.BoolVar(&f.fullRounds, "full-rounds", false, "every round lists the whole tenant, instead of only the key ranges whose digests differ from the backend's (the digests are kept either way, for the other nodes)")
	fs.Float64Var(&f.scrubRate, "scrub-rate", 100, "`objects` per second the scrub reads and verifies on each backend, walking every object in a cycle (it finds damage done behind the nodes' backs), at most half the backend's --backend-ops; it gives way to uploads; 0: no scrub")
	fs.IntVar(&f.checkpointN, "reconcile-checkpoint-every", 1000, "`keys` a reconciliation round handles between checkpoints (a crashed round redoes at most that many)")
	fs.DurationVar(&f.packEvery, "pack-interval", time.Hour, "write a catch-up pack of a tenant (its documents in a few large objects, from which an empty node restores it) after a completed round when the newest pack is older than this, and delete a generation once a newer one is this old (at least 10m); 0: write none")
	fs.IntVar(&f.packMinDocs, "pack-min-docs", reconcile.DefaultPackMinDocs, "fewest `documents` of a tenant for which catch-up packs are written")
	fs.Var(&f.packPart, "pack-part-bytes", "size of a catch-up pack's part (`size`): a restore holds a few in memory; smaller parts mean more backend requests")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve both listeners over TLS 1.2+ with the certificate (and intermediates) in this PEM `file`; reloaded on SIGHUP and when it changes")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the PEM `file` of --tls-cert's private key")
	f.registerMemory(fs) // serve_memory.go
	fs.BoolVar(&f.serveCatchUp, "serve-while-catching-up", false, "answer /readyz 200 while tenants are still restoring from a backend (a node with an empty or older data directory); risk: until a tenant's first round completes, its listings miss documents not fetched yet and an unconditional write of one is settled against the backend's version by the tenant's conflict policy (reads of missing documents read through; conditional writes answer 503)")
	return fs, f
}

func serve(ctx context.Context, args []string, env Env) int {
	fs, f := newServeFlags()
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: cairn serve [flags]\n\nRuns a node. Every flag has an environment twin (--data-dir ↔ CAIRN_DATA_DIR;\n--tenant's is CAIRN_TENANTS; an empty variable counts as unset) and a key in\nthe --config file. With no --tenant, serve creates the demo tenant and prints\nits token; that insecure default listens on loopback only.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	args, code, ok := parseArgs(fs, args, false, env)
	if !ok {
		return code
	}
	if len(args) > 0 {
		fmt.Fprintf(env.Stderr, "cairn serve: unexpected argument %s (see cairn help serve)\n", strayArg(args[0]))
		return exitUsage
	}
	origin, err := settleOrigins(fs, env.Getenv, "config")
	if err != nil {
		fmt.Fprintf(env.Stderr, "cairn serve: %v\n", err)
		return exitUsage
	}
	f.origin = origin
	f.markSet(fs)
	if env.Environ != nil {
		for _, w := range misspeltSettings(fs, env.Environ()) {
			fmt.Fprintf(env.Stderr, "cairn serve: warning: %s\n", w)
		}
	}
	cfg, err := f.nodeConfig(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "cairn serve: %v\n", err)
		return exitUsage
	}
	n, code := start(ctx, env, cfg)
	if n == nil {
		return code
	}
	f.printWelcome(env, n)
	return waitAndDrain(ctx, env, n, drainTimes{delay: f.drainDelay, timeout: f.drainTimeout}, cfg.Logger)
}

// start starts the node, and stops starting it at SIGINT or SIGTERM: the
// start is abandoned (a node it made is shut down) and the process ends.
// A start that does not end within closeGrace of the signal, or at a second
// signal, is left behind: a call inside it (a store's open, a backend's
// check) may not return, and must not hold a process that no signal but
// SIGKILL ends. It returns the node, or nil and the exit code.
func start(ctx context.Context, env Env, cfg node.Config) (*node.Node, int) {
	type started struct {
		n   *node.Node
		err error
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan started, 1)
	go func() {
		n, err := node.Start(sctx, cfg)
		done <- started{n, err}
	}()
	var r started
	select {
	case r = <-done:
		if r.err != nil {
			fmt.Fprintf(env.Stderr, "cairn serve: %v\n", r.err)
			return nil, exitFail
		}
		return r.n, exitOK
	case sig := <-env.Signals:
		fmt.Fprintf(env.Stderr, "cairn: %v while starting: abandoning the start\n", sig)
	}
	cancel()
	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	select {
	case r = <-done:
		if r.n != nil {
			sd, stop := context.WithTimeout(context.Background(), closeGrace)
			defer stop()
			_ = r.n.Shutdown(sd)
		}
	case <-grace.C:
		fmt.Fprintf(env.Stderr, "cairn serve: the start did not end within %v of the signal (a store stuck opening does that): exiting without it\n", closeGrace)
	case sig := <-env.Signals:
		fmt.Fprintf(env.Stderr, "cairn: %v again: exiting without waiting for the start\n", sig)
	}
	return nil, exitFail
}

// waitAndDrain serves until ctx ends, a signal arrives or the node fails,
// then shuts the node down. Its last log line is "stopped", so whoever
// reads the log knows the process ended on purpose and with which code.
func waitAndDrain(ctx context.Context, env Env, n drainable, times drainTimes, log *slog.Logger) int {
	code := exitOK
	drain := times.timeout
	select {
	case <-ctx.Done():
	case sig := <-env.Signals:
		if times.delay > 0 {
			// Load balancers see /readyz 503 and take the node out while it
			// still answers what they send meanwhile; a second signal, or
			// the node failing, cuts the delay short.
			n.SetDraining()
			fmt.Fprintf(env.Stderr, "cairn: %v: /readyz answers 503; serving for --drain-delay %v, then draining for up to %v\n", sig, times.delay, drain)
			log.Info("draining: delay before the drain", "drain_delay", times.delay)
			delay := time.NewTimer(times.delay)
			select {
			case <-delay.C:
			case <-ctx.Done():
			case sig := <-env.Signals:
				fmt.Fprintf(env.Stderr, "cairn: %v again: draining now; a third ends the process without waiting\n", sig)
			case err := <-n.Err():
				fmt.Fprintf(env.Stderr, "cairn serve: %v\n", err)
				code = exitFail
			}
			delay.Stop()
		} else {
			fmt.Fprintf(env.Stderr, "cairn: %v: draining for up to %v\n", sig, drain)
		}
	case err := <-n.Err():
		fmt.Fprintf(env.Stderr, "cairn serve: %v\n", err)
		code = exitFail
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Shutdown(sctx) }()
	// The drain is bounded, but closing the store waits for the writes it
	// has taken, and a write can be stuck inside Pebble for good (a flush
	// that keeps failing on a full disk stalls every write). Past the
	// drain and a grace, or at a second signal, the process ends without
	// it: every acknowledged write is in the store's log already.
	grace := time.NewTimer(drain + closeGrace)
	defer grace.Stop()
	select {
	case err := <-done:
		timedOut, rest := node.ShutdownErrors(err)
		if timedOut {
			msg := fmt.Sprintf("the drain did not finish within --drain-timeout %v: the requests still in flight were cut, and their clients got no answer (they may retry); every write acknowledged is durable", drain)
			fmt.Fprintf(env.Stderr, "cairn serve: shutdown: %s\n", msg)
			log.Warn("shutdown: drain timed out", "drain_timeout", drain)
			code = exitFail
		}
		if rest != nil {
			fmt.Fprintf(env.Stderr, "cairn serve: shutdown: %v\n", rest)
			log.Error("shutdown failed", "err", rest)
			code = exitFail
		}
	case <-grace.C:
		fmt.Fprintf(env.Stderr, "cairn serve: shutdown: the store did not close within %v of the drain (a write is stuck in it; a full disk does that): exiting without it; every acknowledged write is in its log\n", closeGrace)
		code = exitFail
	case sig := <-env.Signals:
		fmt.Fprintf(env.Stderr, "cairn: %v again: exiting without waiting for the shutdown; every acknowledged write is in the store's log\n", sig)
		code = exitFail
	}
	level := slog.LevelInfo
	if code != exitOK {
		level = slog.LevelWarn // the stop was not clean: the lines above say why
	}
	log.Log(context.Background(), level, "stopped", "exit_code", code)
	return code
}

// drainable is what waitAndDrain needs of a node.
type drainable interface {
	Err() <-chan error
	SetDraining()
	Shutdown(context.Context) error
}

// drainTimes are --drain-delay and --drain-timeout.
type drainTimes struct{ delay, timeout time.Duration }

// minCacheBytes is the smallest --cache-bytes a node takes.
const minCacheBytes = 1 << 20

// closeGrace is how long a shutdown may take beyond the drain before the
// process ends without it.
const closeGrace = 30 * time.Second

// nodeConfig checks the settings and turns them into a node.Config. Every
// error names the setting at fault.
func (f *serveFlags) nodeConfig(env Env) (node.Config, error) {
	cfg := node.Config{
		DataDir: f.dataDir, Listen: f.listen, AdminListen: f.adminListen, RespListen: f.respListen, NodeID: f.nodeID,
		RespMaxClients: f.respClients, RespAuthTimeout: f.respAuth, RespIdleTimeout: f.respIdle, MaxConns: f.maxConns,
		CacheBytes: int64(f.cacheBytes), MaxBodyBytes: int64(f.maxBody), KeyFilterBytes: int64(f.keyFilter),
		Auth:                 server.Auth{Tenants: map[string][][32]byte{}},
		ServeWhileCatchingUp: f.serveCatchUp,
	}
	if f.dataDir == "" {
		return cfg, fmt.Errorf("%s: want the node's data directory", f.origin.named("data-dir", f.dataDir))
	}
	if err := store.CheckNodeID(f.nodeID); err != nil {
		return cfg, fmt.Errorf("%s: %v", f.origin.named("node-id", f.nodeID), err)
	}
	// The cache cannot be turned off: 0 would have meant its built-in
	// 64 MiB, and a budget of a few bytes caches nothing while reading as
	// a cache.
	if f.cacheSet && f.cacheBytes < minCacheBytes {
		return cfg, fmt.Errorf("%s: want at least 1MiB (the cache cannot be turned off)", f.origin.named("cache-bytes", f.cacheBytes))
	}
	if f.maxConns < 1 {
		return cfg, fmt.Errorf("%s: want 1 or more", f.origin.named("max-conns", f.maxConns))
	}
	if f.respClients < 1 {
		return cfg, fmt.Errorf("%s: want 1 or more", f.origin.named("resp-max-clients", f.respClients))
	}
	if f.respAuth <= 0 {
		return cfg, fmt.Errorf("%s: want a positive duration", f.origin.named("resp-auth-timeout", f.respAuth))
	}
	switch {
	case f.respIdle < 0:
		return cfg, fmt.Errorf("%s: want 0 (never) or a positive duration", f.origin.named("resp-idle-timeout", f.respIdle))
	case f.respIdle == 0:
		cfg.RespIdleTimeout = -1 // node.Config's zero is the default
	}
	if f.drainTimeout < 0 {
		return cfg, fmt.Errorf("%s: want 0 (stop at once) or more", f.origin.named("drain-timeout", f.drainTimeout))
	}
	if f.drainDelay < 0 {
		return cfg, fmt.Errorf("%s: want 0 (drain at once) or more", f.origin.named("drain-delay", f.drainDelay))
	}
	if f.listen == "" {
		// net.Listen reads an empty address as every interface, any port:
		// unlike the admin and RESP listeners, the API is never off.
		return cfg, fmt.Errorf("%s: want the API's host:port (127.0.0.1:0 for any free loopback port); it cannot be disabled", f.origin.named("listen", f.listen))
	}
	// A port no listener can take, or two listeners on one address, would
	// fail to bind after the store opened: a setting at fault, found before.
	taken := map[string]string{} // address → the flag that took it
	for _, l := range []struct{ flag, addr string }{{"listen", f.listen}, {"admin-listen", f.adminListen}, {"resp-listen", f.respListen}} {
		if l.addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(l.addr)
		if err == nil {
			_, err = net.LookupPort("tcp", port)
		}
		if err != nil {
			return cfg, fmt.Errorf("%s: want HOST:PORT (127.0.0.1:0 for any free loopback port): %v", f.origin.named(l.flag, l.addr), err)
		}
		if other, ok := taken[l.addr]; ok && port != "0" {
			return cfg, fmt.Errorf("%s: the address of --%s too; give each listener its own port", f.origin.named(l.flag, l.addr), other)
		}
		taken[l.addr] = l.flag
	}
	if err := telemetry.CheckExporter(telemetry.ResolveExporter(f.traceExporter, env.Getenv), f.traceFile); err != nil {
		return cfg, fmt.Errorf("%s (%s)", fault.MessageOf(err), f.origin.named("trace-exporter", f.traceExporter))
	}
	switch f.durability {
	case "sync":
		cfg.Durability = store.Sync
	case "buffered":
		cfg.Durability = store.Buffered
	default:
		return cfg, fmt.Errorf("%s: want sync or buffered", f.origin.named("durability", f.durability))
	}
	if f.keyFilter == 0 {
		cfg.KeyFilterBytes = -1 // store.Options: negative is off, 0 the default
	}
	if f.maxBody <= 0 || f.maxBody > store.MaxBody {
		return cfg, fmt.Errorf("%s: want 1 to %d", f.origin.named("max-body-bytes", int64(f.maxBody)), store.MaxBody)
	}
	f.logLevelVar = new(slog.LevelVar)
	if err := f.logLevelVar.UnmarshalText([]byte(f.logLevel)); err != nil {
		return cfg, fmt.Errorf("%s: want debug, info, warn or error", f.origin.named("log-level", f.logLevel))
	}
	log, err := telemetry.NewLogger(env.Stderr, f.logFormat, f.logLevelVar)
	if err != nil {
		return cfg, fmt.Errorf("%s: want json or text", f.origin.named("log-format", f.logFormat))
	}
	cfg.Logger = log
	if f.traceRatio <= 0 || f.traceRatio > 1 {
		return cfg, fmt.Errorf("%s: want a number in (0, 1]", f.origin.named("trace-sample-ratio", f.traceRatio))
	}
	cfg.Trace = telemetry.Config{Exporter: f.traceExporter, TraceFile: f.traceFile, SampleRatio: f.traceRatio,
		Version: version(), Console: env.Stderr, Getenv: env.Getenv}
	if f.reqTimeout <= 0 || f.maxReqTimeout < f.reqTimeout {
		return cfg, fmt.Errorf("%s, %s: want 0 < request-timeout <= max-request-timeout", f.origin.named("request-timeout", f.reqTimeout), f.origin.named("max-request-timeout", f.maxReqTimeout))
	}
	cfg.RequestTimeout, cfg.MaxRequestTimeout = f.reqTimeout, f.maxReqTimeout
	if f.maxInFlight < 1 || f.tenantInFl < 1 || !(f.tenantRate > 0) || math.IsInf(f.tenantRate, 0) {
		return cfg, fmt.Errorf("%s, %s, %s: each must be positive (and the rate finite)", f.origin.named("max-in-flight", f.maxInFlight),
			f.origin.named("tenant-max-in-flight", f.tenantInFl), f.origin.named("tenant-rate", f.tenantRate))
	}
	cfg.Limits = resilience.DefaultLimiterConfig()
	cfg.Limits.MaxInFlight, cfg.Limits.TenantMaxInFlight = f.maxInFlight, f.tenantInFl
	// At least 1: a burst of 0 would read as the limiter's default (400).
	cfg.Limits.TenantRate, cfg.Limits.TenantBurst = f.tenantRate, max(1, int(2*f.tenantRate))
	for _, h := range f.adminHash.vals {
		sum, err := server.ParseTokenHash(h)
		if err != nil {
			return cfg, fmt.Errorf("%s: %v", f.origin.setting("admin-token-sha256"), err) // no value: it may be a token given by mistake
		}
		cfg.Auth.Admin = append(cfg.Auth.Admin, sum)
	}
	for _, t := range f.tenants.vals {
		name, sum, err := parseTenantFlag(t, f.origin)
		if err != nil {
			return cfg, err
		}
		cfg.Auth.Tenants[name] = append(cfg.Auth.Tenants[name], sum)
	}
	if err := sharedTokenHash(cfg.Auth, f.origin); err != nil {
		return cfg, err
	}
	if err := f.replication(&cfg); err != nil {
		return cfg, err
	}
	if err := f.ingest.config(&cfg, f.origin); err != nil {
		return cfg, err
	}
	if err := f.chaos.config(&cfg); err != nil {
		return cfg, err
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return cfg, fmt.Errorf("--tls-cert %q, --tls-key %q: give both (a certificate and its key) or neither", f.tlsCert, f.tlsKey)
	}
	if f.tlsCert != "" {
		for _, fl := range []struct{ flag, path string }{{"tls-cert", f.tlsCert}, {"tls-key", f.tlsKey}} {
			if _, err := os.Stat(fl.path); err != nil {
				return cfg, fmt.Errorf("%s: %v", f.origin.named(fl.flag, fl.path), err)
			}
		}
		// The pair is loaded again when the node starts (and on SIGHUP);
		// a file that is no certificate or key is a setting at fault.
		if _, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey); err != nil {
			return cfg, fmt.Errorf("%s, %s: %v", f.origin.named("tls-cert", f.tlsCert), f.origin.named("tls-key", f.tlsKey), err)
		}
		cfg.TLS = &node.TLS{CertFile: f.tlsCert, KeyFile: f.tlsKey}
	}
	cfg.Reload = env.Hangup
	if err := f.memory(&cfg, env); err != nil {
		return cfg, err
	}
	if env.Getenv("GOGC") == "" { // GOGC, if set, is the operator's trade: kept as given
		cfg.GCHeapFloor = node.DefaultGCHeapFloor
	}
	if len(cfg.Auth.Tenants) == 0 {
		if err := f.useDevToken(&cfg); err != nil {
			return cfg, err
		}
	}
	// node.Start checks it too; here it is a bad setting like the others.
	if err := node.CheckAdminExposure(cfg); err != nil {
		return cfg, errors.New(fault.MessageOf(err))
	}
	return cfg, nil
}

// feed checks --feed-poll and --feed-retention.
func (f *serveFlags) feed(r *node.Replication) error {
	if f.feedPoll < 0 {
		return fmt.Errorf("%s: want 0 (off) or more", f.origin.named("feed-poll", f.feedPoll))
	}
	if f.feedRetention < 0 {
		return fmt.Errorf("%s: want 0 (--gc-grace) or more", f.origin.named("feed-retention", f.feedRetention))
	}
	r.FeedPoll, r.FeedOff, r.FeedRetention = f.feedPoll, f.feedPoll == 0, f.feedRetention
	r.FullRounds = f.fullRounds
	return nil
}

// replication checks --backend, --conflict-policy, --reconcile-interval
// and the collector's --gc-grace and --gc-interval. Opening the backends
// (and checking an S3 bucket) is left to node.Start.
func (f *serveFlags) replication(cfg *node.Config) error {
	if f.reconcileIvl < 0 {
		return fmt.Errorf("%s: want 0 (on demand) or more", f.origin.named("reconcile-interval", f.reconcileIvl))
	}
	if f.gcInterval < 0 {
		return fmt.Errorf("%s: want 0 (never) or more", f.origin.named("gc-interval", f.gcInterval))
	}
	if f.coalesce < 0 {
		return fmt.Errorf("%s: want 0 (none) or more", f.origin.named("coalesce-window", f.coalesce))
	}
	// A grace period a node can miss between two rounds lets the collector
	// remove a delete that node has not seen: it would upload its copy back.
	if f.gcGrace <= f.reconcileIvl {
		return fmt.Errorf("%s: want more than --reconcile-interval (%v), and more than the longest partition you tolerate", f.origin.named("gc-grace", f.gcGrace), f.reconcileIvl)
	}
	if f.checkpointN < 1 {
		return fmt.Errorf("%s: want 1 or more", f.origin.named("reconcile-checkpoint-every", f.checkpointN))
	}
	if f.packEvery < 0 {
		return fmt.Errorf("%s: want 0 (no packs) or more", f.origin.named("pack-interval", f.packEvery))
	}
	if f.packPart < 0 || f.packPart > pack.MaxPart {
		return fmt.Errorf("%s: want at most %d bytes", f.origin.named("pack-part-bytes", f.packPart), pack.MaxPart)
	}
	if f.packMinDocs < 1 {
		return fmt.Errorf("%s: want 1 or more", f.origin.named("pack-min-docs", f.packMinDocs))
	}
	if !(f.scrubRate >= 0) || math.IsInf(f.scrubRate, 1) { // !(>=) also refuses NaN
		return fmt.Errorf("%s: want 0 (no scrub) or a positive number of objects per second", f.origin.named("scrub-rate", f.scrubRate))
	}
	r := node.Replication{Interval: f.reconcileIvl, CheckpointEvery: f.checkpointN, CoalesceWindow: f.coalesce, ScrubRate: f.scrubRate, Policies: map[string]reconcile.Policy{},
		GCGrace: f.gcGrace, GCInterval: f.gcInterval, Packs: reconcile.PackConfig{Every: f.packEvery, MinDocs: f.packMinDocs, PartSize: int(f.packPart)}}
	for _, s := range f.backends.vals {
		spec, err := node.ParseBackendSpec(s)
		if err != nil {
			return err
		}
		for _, other := range r.Backends {
			if spec.Name == other.Name {
				return fmt.Errorf("%s: the name %s is --backend %s=%s's too: give each backend a name of its own", f.origin.named("backend", s), spec.Name, other.Name, other.URL)
			}
			// One place under two names would be reconciled twice, each
			// name with its own cursors and feed, for nothing.
			if loc := spec.Location(); loc != "" && loc == other.Location() {
				return fmt.Errorf("%s: the same place as --backend %s=%s: give each backend once", f.origin.named("backend", s), other.Name, other.URL)
			}
			// A directory inside another backend's would be read by that
			// backend as a tenant of its own.
			if a, b := spec.Dir(), other.Dir(); a != "" && b != "" && (within(a, b) || within(b, a)) {
				return fmt.Errorf("%s: one directory holds the other's, with --backend %s=%s: give backends directories apart", f.origin.named("backend", s), other.Name, other.URL)
			}
		}
		// The data directory inside an fs backend, or the backend inside
		// it, would be read by the backend as a tenant of its own ("data")
		// and replicated to every node.
		if d := spec.Dir(); d != "" {
			if d, data := absPath(d), absPath(f.dataDir); d == data || within(data, d) || within(d, data) {
				return fmt.Errorf("%s: one directory holds the other, with --data-dir %s: give the backend a directory apart from the node's data", f.origin.named("backend", s), f.dataDir)
			}
		}
		r.Backends = append(r.Backends, spec)
	}
	for _, s := range f.policies.vals {
		tenant, name, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("%s: want TENANT=lww|merge|merge/manual|manual", f.origin.named("conflict-policy", s))
		}
		if err := doc.ValidateTenant(tenant); err != nil {
			return fmt.Errorf("%s: %v", f.origin.named("conflict-policy", s), err)
		}
		p, err := reconcile.ParsePolicy(name)
		if err != nil {
			return fmt.Errorf("%s: %v", f.origin.named("conflict-policy", s), err)
		}
		if _, dup := r.Policies[tenant]; dup {
			return fmt.Errorf("%s: tenant %s has a policy already: give one per tenant", f.origin.named("conflict-policy", s), tenant)
		}
		// A misspelt tenant would leave the meant one on the default policy.
		// With no --tenant, the node serves demo alone.
		known := slices.Sorted(maps.Keys(cfg.Auth.Tenants))
		if len(known) == 0 {
			known = []string{"demo"}
		}
		if !slices.Contains(known, tenant) {
			return fmt.Errorf("%s: no --tenant names %s (the node's tenants: %s)", f.origin.named("conflict-policy", s), tenant, strings.Join(known, ", "))
		}
		r.Policies[tenant] = p
	}
	if err := f.feed(&r); err != nil {
		return err
	}
	limits, err := f.backendLimits(r.Backends)
	if err != nil {
		return err
	}
	r.Limits = limits
	cfg.Replication = r
	return nil
}

// backendLimits reads --backend-concurrency, --backend-ops and
// --backend-bytes, each NAME=VALUE for a NAME given to --backend.
func (f *serveFlags) backendLimits(specs []node.BackendSpec) (map[string]reconcile.Limits, error) {
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	m := map[string]reconcile.Limits{}
	for _, fl := range []struct {
		name string
		vals []string
		set  func(l *reconcile.Limits, v string) error
	}{
		{"backend-concurrency", f.beConc.vals, func(l *reconcile.Limits, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return errors.New("want a whole number of calls, 1 or more")
			}
			l.Concurrency = n
			return nil
		}},
		{"backend-ops", f.beOps.vals, func(l *reconcile.Limits, v string) error {
			r, err := strconv.ParseFloat(v, 64)
			if err != nil || !(r > 0) || math.IsInf(r, 0) {
				return errors.New("want calls per second, more than 0")
			}
			l.OpsPerSec = r
			return nil
		}},
		{"backend-bytes", f.beBytes.vals, func(l *reconcile.Limits, v string) error {
			var b byteSize
			if err := b.Set(v); err != nil || b == 0 {
				return errors.New("want bytes per second such as 20MiB, more than 0")
			}
			l.BytesPerSec = float64(b)
			return nil
		}},
	} {
		seen := map[string]bool{}
		for _, s := range fl.vals {
			name, v, ok := strings.Cut(s, "=")
			if !ok {
				return nil, fmt.Errorf("%s: want NAME=VALUE", f.origin.named(fl.name, s))
			}
			if !names[name] {
				return nil, fmt.Errorf("%s: no --backend named %q", f.origin.named(fl.name, s), name)
			}
			if seen[name] {
				return nil, fmt.Errorf("%s: backend %s has a limit already: give one per backend", f.origin.named(fl.name, s), name)
			}
			seen[name] = true
			l := m[name]
			if err := fl.set(&l, v); err != nil {
				return nil, fmt.Errorf("%s: %v", f.origin.named(fl.name, s), err)
			}
			m[name] = l
		}
	}
	return m, nil
}

func parseTenantFlag(s string, origin origins) (string, [32]byte, error) {
	// The errors name the tenant but not what follows it, nor a value
	// without a colon: either may be a token given by mistake for its hash.
	name, hexsum, ok := strings.Cut(s, ":")
	if !ok {
		return "", [32]byte{}, fmt.Errorf("%s: want NAME:TOKEN_SHA256, got a value without ':' (not repeated here: it may be a token)", origin.setting("tenant"))
	}
	if err := doc.ValidateTenant(name); err != nil {
		return "", [32]byte{}, fmt.Errorf("%s: %v", origin.named("tenant", name+":…"), err)
	}
	sum, err := server.ParseTokenHash(hexsum)
	if err != nil {
		return "", [32]byte{}, fmt.Errorf("%s: %v (the value after ':' is not repeated here: it may be a token)", origin.named("tenant", name+":…"), err)
	}
	return name, sum, nil
}

// sharedTokenHash refuses a token hash given to two roles
// (server.Auth.SharedHash), naming the settings; the error names the roles,
// not the hash.
func sharedTokenHash(a server.Auth, origin origins) error {
	first, second, ok := a.SharedHash()
	if !ok {
		return nil
	}
	if first == "the admin" {
		first += " (" + origin.setting("admin-token-sha256") + ")"
	}
	return fmt.Errorf("%s: the token hash of %s is also given to %s: a token acts for one tenant or the admin, never more (give each its own token)",
		origin.setting("tenant"), second, first)
}

// strayArg is how serve's refusal of an argument shows it: quoted when
// server.Showable, else by its length only. "--tenant acme TOKEN", a space
// for the colon, would otherwise print the token to the terminal and a
// service's journal.
func strayArg(a string) string {
	if server.Showable(a) {
		return strconv.Quote(a)
	}
	return "(" + strconv.Itoa(len(a)) + " bytes, not repeated: it may be a token)"
}

// useDevToken configures the demo tenant with a development token kept in
// the data directory, so it survives restarts, and refuses to serve it
// beyond loopback.
func (f *serveFlags) useDevToken(cfg *node.Config) error {
	for _, l := range []struct{ flag, addr string }{{"--listen", f.listen}, {"--admin-listen", f.adminListen}, {"--resp-listen", f.respListen}} {
		if l.addr == "" {
			continue
		}
		if !node.IsLoopback(l.addr) { // nodeConfig checked the address's form
			return fmt.Errorf("%s %s: with no --tenant configured, cairn serves an insecure development token and listens on loopback only; configure --tenant NAME:TOKEN_SHA256 (and --admin-token-sha256) to listen on %s", l.flag, l.addr, l.addr)
		}
	}
	tok, err := devToken(f.dataDir)
	if err != nil {
		return fmt.Errorf("--data-dir %s: development token: %v", f.dataDir, err)
	}
	cfg.Auth.Tenants["demo"] = [][32]byte{server.HashToken(tok)}
	f.usingDevToken = true
	f.demoToken = tok
	return nil
}

// devToken reads the development token from dir/dev-token, creating both if
// missing. The file is written whole before it appears (a temporary file,
// linked to its name), so a crash cannot leave it empty; an empty one (left
// by a build that wrote it in place) holds no token and is replaced.
func devToken(dir string) (string, error) {
	path := filepath.Join(dir, "dev-token")
	empty := false
	if b, err := os.ReadFile(path); err == nil {
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		empty = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tok, _, err := server.NewToken()
	if err != nil {
		return "", err
	}
	fh, err := os.CreateTemp(dir, ".dev-token.*")
	if err != nil {
		return "", err
	}
	defer os.Remove(fh.Name())
	_, err = fmt.Fprintln(fh, tok)
	if err = errors.Join(err, fh.Sync(), fh.Close()); err != nil {
		return "", err
	}
	if empty {
		err = os.Rename(fh.Name(), path)
	} else {
		err = os.Link(fh.Name(), path) // fails if another process made it first
	}
	if errors.Is(err, fs.ErrExist) {
		return devToken(dir)
	}
	return tok, err
}

func (f *serveFlags) printWelcome(env Env, n *node.Node) {
	url, elsewhere := openableURL(n.URL())
	where := url
	if elsewhere != "" {
		where += " on every interface, from other machines " + elsewhere
	}
	admin := n.AdminAddr()
	if admin != "" {
		// A wildcard address becomes loopback's: say that it is reachable
		// from other machines too.
		if u, _ := openableURL("http://" + admin); strings.TrimPrefix(u, "http://") != admin {
			admin = strings.TrimPrefix(u, "http://") + " on every interface"
		}
	}
	resp := ""
	if a := n.RESPAddr(); a != "" {
		resp = ", resp " + a
	}
	fmt.Fprintf(env.Stderr, "cairn %s serving %s (admin %s%s), data in %s\n", version(), where, orNone(admin), resp, f.dataDir)
	if !f.usingDevToken {
		return
	}
	fmt.Fprintf(env.Stderr, "no --tenant configured: the demo tenant has a development token (kept in %s/dev-token).\n", f.dataDir)
	fmt.Fprintf(env.Stderr, "paste these lines into a shell, then try: cairn put hello - <<< '{\"hi\":1}' && cairn get hello\n")
	fmt.Fprintf(env.Stdout, "export CAIRN_URL=%s\nexport CAIRN_TENANT=demo\nexport CAIRN_TOKEN=%s\n", shellQuote(url), shellQuote(f.demoToken))
	if admin != "" {
		// For 'cairn reconcile', which talks to the admin listener, over
		// TLS when the node serves it.
		scheme, _, _ := strings.Cut(url, "://")
		fmt.Fprintf(env.Stdout, "export CAIRN_ADMIN_URL=%s\n", shellQuote(scheme+"://"+admin))
	}
	fmt.Fprintf(env.Stderr, "or: curl -H \"Authorization: Bearer $CAIRN_TOKEN\" %s/v1/tenants/demo/docs\n", url)
	tls := ""
	if f.tlsCert != "" {
		tls = " --tls"
	}
	if a := n.RESPAddr(); a != "" {
		if host, port, err := net.SplitHostPort(a); err == nil {
			fmt.Fprintf(env.Stderr, "or: redis-cli%s -h %s -p %s --user demo --pass \"$CAIRN_TOKEN\" get hello\n", tls, host, port)
		}
	}
	if tls != "" {
		fmt.Fprintf(env.Stderr, "(over TLS, give curl and redis-cli --cacert FILE, the CA that signed --tls-cert, unless the system trusts it; cairn takes CAIRN_CA_CERT)\n")
	}
}

// openableURL turns a listener's URL (scheme://host:port) into one a person
// can open. A wildcard address (0.0.0.0, [::]) is not one: it becomes the
// loopback URL, which works on this machine, and elsewhere is the URL by
// host name, for other machines.
func openableURL(u string) (url, elsewhere string) {
	scheme, addr, ok := strings.Cut(u, "://")
	if !ok {
		return u, ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return u, ""
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return u, ""
	}
	url = scheme + "://" + net.JoinHostPort("127.0.0.1", port)
	if name, err := os.Hostname(); err == nil && name != "" {
		elsewhere = scheme + "://" + net.JoinHostPort(name, port)
	}
	return url, elsewhere
}

// shellQuote quotes s for a POSIX shell when it has characters the shell
// would interpret (an IPv6 URL's brackets are a glob).
func shellQuote(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.,:/@%+=", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// within reports whether directory a is inside directory b (both clean).
// absPath is path made absolute, with its links resolved where it exists.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return path
}

func within(a, b string) bool {
	rel, err := filepath.Rel(b, a)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
