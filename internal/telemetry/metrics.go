package telemetry

import (
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resilience"
)

// Metrics are cairn's Prometheus metrics on an own registry. Names are in
// base units with _total on counters; no label carries a tenant id or a key
// (per-tenant figures are in the tenant table, see [Telemetry.TenantStatsHandler]).
// The methods are the hooks other packages call; all are safe for concurrent
// use and allocate nothing once a label combination has been seen.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec   // route, method, code
	httpDuration *prometheus.HistogramVec // route, method
	httpInFlight *inflightVec             // route

	commitDuration prometheus.Histogram
	commitBatch    prometheus.Histogram

	ingestRecords   prometheus.Counter
	ingestBytes     prometheus.Counter
	ingestMalformed prometheus.Counter
	ingestOversize  prometheus.Counter
	ingestBadKey    prometheus.Counter

	backendOps         *prometheus.CounterVec   // backend, op, outcome
	backendDuration    *prometheus.HistogramVec // backend, op
	breakerState       *prometheus.GaugeVec     // backend, state
	breakerTransitions *prometheus.CounterVec   // backend, to
	retries            *prometheus.CounterVec   // backend
	throttled          *prometheus.CounterVec   // backend
	budgetRejections   *prometheus.CounterVec   // backend

	reconcileRounds        *prometheus.CounterVec   // backend, outcome
	reconcileRoundDuration *prometheus.HistogramVec // backend
	reconcileKeys          *prometheus.CounterVec   // backend
	reconcileActions       *prometheus.CounterVec   // backend, action
	reconcileConflicts     *prometheus.CounterVec   // backend, policy
	reconcileBytes         *prometheus.CounterVec   // backend, direction
	reconcileQuarantined   *prometheus.CounterVec   // backend
	scrubObjects           *prometheus.CounterVec   // backend
	scrubCycle             *prometheus.GaugeVec     // backend
	scrubFailures          *prometheus.CounterVec   // backend
	scrubFailing           *prometheus.GaugeVec     // backend
	replicationLag         *lagGauge                // backend
	collect                collectMetrics           // collect.go
	feed                   feedMetrics              // feed.go
	node                   nodeMetrics              // node.go

	chaosInjected *prometheus.CounterVec // backend, fault (chaos.go)
	chaosBallast  prometheus.Gauge

	tls tlsMetrics // tls.go

	tenants *tenantTable
}

// Compile-time check: Metrics is the breaker and retry observer of package
// resilience.
var (
	_ resilience.Observer      = (*Metrics)(nil)
	_ resilience.RetryObserver = (*Metrics)(nil)
)

// latencyBuckets span a cached read (~50µs) to a slow backend call (10s).
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// NewMetrics registers cairn's metrics, the Go and process collectors and
// cairn_build_info on a new registry. maxTenants bounds the tenant table
// [1024].
func NewMetrics(version string, maxTenants int) *Metrics {
	reg := prometheus.NewRegistry()
	f := factory{reg}
	m := &Metrics{
		reg: reg,

		httpRequests: f.counterVec("cairn_http_requests_total",
			"HTTP requests served, by route pattern, method and status code.", "route", "method", "code"),
		httpDuration: f.histogramVec("cairn_http_request_duration_seconds",
			"Time to serve an HTTP request, from the server taking it to the handler's return.", latencyBuckets, "route", "method"),
		httpInFlight: newInflightVec(reg, "cairn_http_requests_in_flight", "HTTP requests being served now.", "route"),

		commitDuration: f.histogram("cairn_store_commit_duration_seconds",
			"Time of one store group commit (write and fsync).", latencyBuckets),
		commitBatch: f.histogram("cairn_store_commit_batch_size",
			"Writes per store group commit.", prometheus.ExponentialBuckets(1, 2, 11)),

		ingestRecords:   f.counter("cairn_ingest_records_total", "NDJSON records accepted by ingestion."),
		ingestBytes:     f.counter("cairn_ingest_bytes_total", "Input bytes consumed by ingestion."),
		ingestMalformed: f.counter("cairn_ingest_malformed_total", "NDJSON records skipped as malformed."),
		ingestOversize:  f.counter("cairn_ingest_oversize_total", "NDJSON records skipped as too large."),
		ingestBadKey:    f.counter("cairn_ingest_invalid_key_total", "NDJSON records skipped for a missing or invalid key."),

		backendOps: f.counterVec("cairn_backend_operations_total",
			"Backend calls (after retries), by backend, operation and outcome (ok or the fault class).", "backend", "op", "outcome"),
		backendDuration: f.histogramVec("cairn_backend_operation_duration_seconds",
			"Time of a backend call including retries.", latencyBuckets, "backend", "op"),
		breakerState: f.gaugeVec("cairn_backend_breaker_state",
			"1 for the circuit breaker state a backend is in, 0 for the others.", "backend", "state"),
		breakerTransitions: f.counterVec("cairn_backend_breaker_transitions_total",
			"Circuit breaker state changes, by backend and new state.", "backend", "to"),
		retries: f.counterVec("cairn_backend_retries_total",
			"Backend call attempts after the first.", "backend"),
		throttled: f.counterVec("cairn_backend_throttled_total",
			"Backend answers asking the node to slow down (S3 SlowDown and its kin, 429, 503), each attempt counted, retried or not.", "backend"),
		budgetRejections: f.counterVec("cairn_backend_budget_rejections_total",
			"Retries refused because the backend's retry budget was spent.", "backend"),

		reconcileRounds: f.counterVec("cairn_reconcile_rounds_total",
			"Reconciliation rounds finished, by backend and outcome (ok or the fault class).", "backend", "outcome"),
		reconcileRoundDuration: f.histogramVec("cairn_reconcile_round_duration_seconds",
			"Time of one reconciliation round.", prometheus.ExponentialBuckets(0.01, 4, 10), "backend"),
		reconcileKeys: f.counterVec("cairn_reconcile_keys_total",
			"Keys examined by the reconciler's merge-join (its progress).", "backend"),
		reconcileActions: f.counterVec("cairn_reconcile_actions_total",
			"Reconciliation decisions applied, by backend and action (in_sync, update_base, fetch_remote, upload, download, conflict).", "backend", "action"),
		reconcileConflicts: f.counterVec("cairn_reconcile_conflicts_total",
			"Concurrent versions found, by backend and the policy that resolved them.", "backend", "policy"),
		reconcileQuarantined: f.counterVec("cairn_reconcile_quarantined_total",
			"Damaged remote objects recorded in the store's quarantine before their repair, by backend.", "backend"),
		scrubObjects: f.counterVec("cairn_scrub_objects_total",
			"Objects the scrub read and verified, by backend.", "backend"),
		scrubCycle: f.gaugeVec("cairn_scrub_cycle_seconds",
			"Time the scrub's last whole cycle over every tenant's objects took, by backend.", "backend"),
		scrubFailures: f.counterVec("cairn_scrub_failures_total",
			"Walks of one tenant's objects by the scrub that ended in an error, by backend: that tenant's objects past the error went unverified.", "backend"),
		scrubFailing: f.gaugeVec("cairn_scrub_failing_tenants",
			"Tenants whose last walk by the scrub ended in an error, by backend: their objects go unverified until a walk succeeds.", "backend"),
		reconcileBytes: f.counterVec("cairn_reconcile_bytes_total",
			"Document bytes the reconciler moved, by backend and direction (up: to the backend, down: to the store).", "backend", "direction"),
		replicationLag: newLagGauge(reg),

		collect: newCollectMetrics(f),
		feed:    newFeedMetrics(f),
		tls:     newTLSMetrics(f),
		node:    newNodeMetrics(f),
		tenants: newTenantTable(maxTenants),
	}
	m.registerChaos(f)
	b := ReadBuild()
	build := f.gaugeVec("cairn_build_info", "Always 1; the labels name the build: version, Go release, and the commit it was built from (empty when the build did not record it).",
		"version", "goversion", "revision", "revision_time", "modified")
	build.WithLabelValues(version, runtime.Version(), b.Revision, b.Time, strconv.FormatBool(b.Modified)).Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// factory registers what it makes; names are fixed at compile time, so a
// registration failure is a programmer error and panics (MustRegister).
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// Registry returns the registry, for tests and for registering a package's
// own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// OnCommit records one store group commit. It has the signature of
// store.Options.OnCommit and runs on the store's syncer goroutine: two
// atomic histogram updates, no locks.
func (m *Metrics) OnCommit(batchSize int, d time.Duration) {
	m.commitDuration.Observe(d.Seconds())
	m.commitBatch.Observe(float64(batchSize))
}

// IngestCounts are the counters of one ingest batch or stream; ingest.Stats
// converts field by field.
type IngestCounts struct {
	Records, Bytes, Malformed, Oversize, InvalidKey int64
}

// AddIngest adds one ingest batch of tenant to the global counters and to
// the tenant table.
func (m *Metrics) AddIngest(tenant string, c IngestCounts) {
	m.ingestRecords.Add(float64(c.Records))
	m.ingestBytes.Add(float64(c.Bytes))
	m.ingestMalformed.Add(float64(c.Malformed))
	m.ingestOversize.Add(float64(c.Oversize))
	m.ingestBadKey.Add(float64(c.InvalidKey))
	if tenant != "" {
		m.tenants.addIngest(tenant, c)
	}
}

// AddTenantCommand counts one RESP command of a signed-in tenant in the
// tenant table, as a request: failed says whether its reply was an error,
// serverSide whether that error was the node's own failure (a 5xx's
// counterpart) rather than the client's.
func (m *Metrics) AddTenantCommand(tenant string, failed, serverSide bool) {
	code := http.StatusOK
	switch {
	case failed && serverSide:
		code = http.StatusInternalServerError
	case failed:
		code = http.StatusBadRequest
	}
	m.tenants.addRequest(tenant, true, code, 0)
}

// ObserveBackend records one backend call as the caller saw it (after
// retries): outcome is "ok" for a nil err, else the fault class name.
func (m *Metrics) ObserveBackend(backend, op string, err error, d time.Duration) {
	m.backendOps.WithLabelValues(backend, op, outcome(err)).Inc()
	m.backendDuration.WithLabelValues(backend, op).Observe(d.Seconds())
}

// OnRetry counts one retry (an attempt after the first) of backend.
func (m *Metrics) OnRetry(backend string) { m.retries.WithLabelValues(backend).Inc() }

// OnThrottled counts one answer of backend asking the node to slow down.
func (m *Metrics) OnThrottled(backend string) { m.throttled.WithLabelValues(backend).Inc() }

// OnBudgetRejection counts one retry refused by backend's retry budget.
func (m *Metrics) OnBudgetRejection(backend string) {
	m.budgetRejections.WithLabelValues(backend).Inc()
}

var breakerStates = [...]resilience.State{resilience.Closed, resilience.Open, resilience.HalfOpen}

// AddBackend makes backend's series exist before anything happens to it:
// breaker state closed, zero retries and budget rejections, and the zero
// counts the alerts watch.
func (m *Metrics) AddBackend(backend string) {
	m.setBreaker(backend, resilience.Closed)
	m.retries.WithLabelValues(backend)
	m.throttled.WithLabelValues(backend)
	m.budgetRejections.WithLabelValues(backend)
	// The feed's counters exist from the start, so that an alert on their
	// increase sees the first gap.
	m.feed.published.WithLabelValues(backend)
	m.feed.read.WithLabelValues(backend)
	m.feed.fallbacks.WithLabelValues(backend)
	// So do those the shipped alerts take the increase of: increase()
	// counts nothing for a series' first sample, so a series made by the
	// first failed round, breaker opening, corrupt object or guard stop
	// would hide it.
	m.reconcileRounds.WithLabelValues(backend, outcome(nil))
	m.reconcileRounds.WithLabelValues(backend, "held") // reconcile.ErrNeedsConfirm
	for _, c := range fault.Classes() {
		m.reconcileRounds.WithLabelValues(backend, c.String())
	}
	for _, s := range breakerStates {
		m.breakerTransitions.WithLabelValues(backend, s.String())
	}
	for _, a := range []string{"corrupt", "guard_stop"} { // reconcile.ActionCorrupt, ActionGuardStop
		m.reconcileActions.WithLabelValues(backend, a)
	}
	m.reconcileKeys.WithLabelValues(backend)
	m.reconcileQuarantined.WithLabelValues(backend)
	m.scrubFailures.WithLabelValues(backend)
	m.scrubFailing.WithLabelValues(backend)
	for _, p := range []string{"lww", "merge", "merge/manual", "manual"} { // reconcile.Policy.String
		m.reconcileConflicts.WithLabelValues(backend, p)
	}
}

// OnStateChange implements resilience.Observer: the breaker state gauge and
// transition counter. It is called under the breaker's mutex, so it only
// touches atomics.
func (m *Metrics) OnStateChange(backend string, from, to resilience.State) {
	m.setBreaker(backend, to)
	m.breakerTransitions.WithLabelValues(backend, to.String()).Inc()
}

func (m *Metrics) setBreaker(backend string, to resilience.State) {
	for _, s := range breakerStates {
		v := 0.0
		if s == to {
			v = 1
		}
		m.breakerState.WithLabelValues(backend, s.String()).Set(v)
	}
}

// ReconcileRound records a finished reconciliation round.
func (m *Metrics) ReconcileRound(backend string, err error, d time.Duration) {
	m.reconcileRounds.WithLabelValues(backend, outcome(err)).Inc()
	m.reconcileRoundDuration.WithLabelValues(backend).Observe(d.Seconds())
}

// ReconcileKeys adds n keys examined by the merge-join.
func (m *Metrics) ReconcileKeys(backend string, n int) {
	m.reconcileKeys.WithLabelValues(backend).Add(float64(n))
}

// ReconcileAction counts one decision: in_sync, upload, download, delete or
// conflict.
func (m *Metrics) ReconcileAction(backend, action string) {
	m.reconcileActions.WithLabelValues(backend, action).Inc()
}

// ReconcileConflict counts one conflict resolved by policy (lww, merge,
// manual).
func (m *Metrics) ReconcileConflict(backend, policy string) {
	m.reconcileConflicts.WithLabelValues(backend, policy).Inc()
}

// ReconcileQuarantined counts one damaged remote object quarantined
// before its repair (reconcile.QuarantineObserver).
func (m *Metrics) ReconcileQuarantined(backend string) {
	m.reconcileQuarantined.WithLabelValues(backend).Inc()
}

// ScrubObjects counts objects the scrub verified (reconcile.ScrubObserver).
func (m *Metrics) ScrubObjects(backend string, n int) {
	m.scrubObjects.WithLabelValues(backend).Add(float64(n))
}

// ScrubCycle records how long the scrub's last whole cycle took.
func (m *Metrics) ScrubCycle(backend string, d time.Duration) {
	m.scrubCycle.WithLabelValues(backend).Set(d.Seconds())
}

// ScrubFailed counts a scrub's walk of a tenant that ended in an error.
func (m *Metrics) ScrubFailed(backend string) {
	m.scrubFailures.WithLabelValues(backend).Inc()
}

// ScrubFailing sets how many tenants' last scrub walk failed.
func (m *Metrics) ScrubFailing(backend string, n int) {
	m.scrubFailing.WithLabelValues(backend).Set(float64(n))
}

// ReconcileBytes adds document bytes moved by the reconciler: up to the
// backend, down to the store.
func (m *Metrics) ReconcileBytes(backend string, up, down int64) {
	if up > 0 {
		m.reconcileBytes.WithLabelValues(backend, "up").Add(float64(up))
	}
	if down > 0 {
		m.reconcileBytes.WithLabelValues(backend, "down").Add(float64(down))
	}
}

// ReplicationLagFunc makes cairn_replication_lag_seconds{backend} read f
// at each scrape: the age of backend's oldest change not yet uploaded (0
// when caught up). A later call for the same backend replaces f.
func (m *Metrics) ReplicationLagFunc(backend string, f func() time.Duration) {
	m.replicationLag.set(backend, f)
}

// SetReplicationLag sets backend's lag to a fixed value (tests, or a
// caller that computes it itself).
func (m *Metrics) SetReplicationLag(backend string, lag time.Duration) {
	m.replicationLag.set(backend, func() time.Duration { return lag })
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	var o outcomer
	if errors.As(err, &o) {
		return o.Outcome()
	}
	return fault.ClassOf(err).String()
}

// outcomer is an error that is no failure and names its own outcome: the
// mass-deletion guard's stop of a round ("held").
type outcomer interface{ Outcome() string }
