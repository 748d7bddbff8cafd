package telemetry

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// nodeMetrics are the node's own failures, beside the backends' (see
// docs/runbook.md, "The node's own failures"): a store that failed a write
// and refuses every request since, and steps of the wall clock under the
// hybrid logical clock.
type nodeMetrics struct {
	storeFailures *prometheus.CounterVec // cause
	storeFailed   prometheus.Gauge
	clockJumps    *prometheus.CounterVec // direction
	// identityConflict: another process claimed the node's identity.
	identityConflict prometheus.Gauge
}

// The values of cairn_store_failures_total's cause label: disk_full when the
// write failed for want of space (ENOSPC, EDQUOT: fault.Exhausted),
// io_error for any other failed write or fsync of the log.
// The causes of cairn_store_failures_total.
const (
	CauseDiskFull = "disk_full"
	CauseIOError  = "io_error"
)

func newNodeMetrics(f factory) nodeMetrics {
	m := nodeMetrics{
		storeFailures: f.counterVec("cairn_store_failures_total",
			"Times the local store failed a write of its log and began refusing every request, by cause (disk_full, io_error).", "cause"),
		storeFailed: f.gauge("cairn_store_failed",
			"1 while the local store refuses every request after a failed write (until the node restarts), else 0."),
		identityConflict: f.gauge("cairn_identity_conflict",
			"1 once another process claimed this node's identity (node id and incarnation) on a backend: two nodes run from copies of one data directory (until the node restarts), else 0."),
		clockJumps: f.counterVec("cairn_clock_jumps_total",
			"Steps of the wall clock larger than a second seen between two readings of the hybrid logical clock, by direction (backward, forward).", "direction"),
	}
	for _, c := range []string{CauseDiskFull, CauseIOError} {
		m.storeFailures.WithLabelValues(c)
	}
	for _, d := range []string{"backward", "forward"} {
		m.clockJumps.WithLabelValues(d)
	}
	return m
}

// StoreFailed records that the local store failed, for cause (CauseDiskFull
// or CauseIOError), and now refuses every request.
func (m *Metrics) StoreFailed(cause string) {
	m.node.storeFailures.WithLabelValues(cause).Inc()
	m.node.storeFailed.Set(1)
}

// ClockJumped counts one step of the wall clock in direction (doc.Jump's
// Direction: backward or forward).
func (m *Metrics) ClockJumped(direction string) {
	m.node.clockJumps.WithLabelValues(direction).Inc()
}

// RegisterClock exposes cairn_hlc_ahead_seconds, read from ahead at scrape
// time: how far the hybrid logical clock's readings run ahead of the wall
// clock. It fails if called twice.
func (m *Metrics) RegisterClock(ahead func() time.Duration) error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_hlc_ahead_seconds",
		Help: "How far the hybrid logical clock runs ahead of the wall clock: 0 normally, positive after the wall stepped back or a version from a node whose clock runs ahead was observed."},
		func() float64 { return ahead().Seconds() })
	if err := m.reg.Register(g); err != nil {
		return fmt.Errorf("telemetry: register clock metrics: %w", err)
	}
	return nil
}

// RegisterConns exposes cairn_http_connections, read from open at scrape
// time: the API's connections open now, which --max-conns bounds. It fails
// if called twice.
func (m *Metrics) RegisterConns(open func() int64) error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_http_connections",
		Help: "API (HTTP) connections open now; past --max-conns a new connection's request is answered 503."},
		func() float64 { return float64(open()) })
	if err := m.reg.Register(g); err != nil {
		return fmt.Errorf("telemetry: register connection metrics: %w", err)
	}
	return nil
}

// RegisterShed exposes cairn_shed_total, read from shed at scrape time:
// the requests the node refused for its own limits, by reason — busy (the
// node at --max-in-flight, 503), conns (a connection past --max-conns or
// --resp-max-clients) and tenant (a tenant over --tenant-rate or
// --tenant-max-in-flight, 429), over HTTP and RESP alike. It fails if
// called twice.
func (m *Metrics) RegisterShed(shed func() Shed) error {
	c := &shedCollector{shed: shed, desc: prometheus.NewDesc("cairn_shed_total",
		"Requests refused for the node's own limits, by reason: busy (--max-in-flight), conns (--max-conns, --resp-max-clients), tenant (a tenant's --tenant-rate or --tenant-max-in-flight), memory (the documents of requests in flight hold what --memory-limit keeps for them).",
		[]string{"reason"}, nil)}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("telemetry: register shed metrics: %w", err)
	}
	return nil
}

// Shed counts the requests a node refused, by reason (cairn_shed_total).
type Shed struct{ Busy, Conns, Tenant, Memory int64 }

// RegisterDisk registers the data directory's free space and the store's
// reserve, read at scrape time: writes are refused while the free space is
// under the reserve, which no failure counter shows.
func (m *Metrics) RegisterDisk(room func() (free, reserve int64)) error {
	c := &diskCollector{room: room,
		free: prometheus.NewDesc("cairn_store_disk_free_bytes",
			"Free space of the data directory's file system at the store's last measure (four a second).", nil, nil),
		reserve: prometheus.NewDesc("cairn_store_disk_reserve_bytes",
			"Free space the store keeps on the data directory's file system: it refuses writes while less is free.", nil, nil)}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("telemetry: register disk metrics: %w", err)
	}
	return nil
}

type diskCollector struct {
	room          func() (free, reserve int64)
	free, reserve *prometheus.Desc
}

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.free; ch <- c.reserve }

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	free, reserve := c.room()
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(free))
	ch <- prometheus.MustNewConstMetric(c.reserve, prometheus.GaugeValue, float64(reserve))
}

// shedCollector reads the limiters' counts at scrape time, all three
// from one call.
type shedCollector struct {
	shed func() Shed
	desc *prometheus.Desc
}

func (c *shedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *shedCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.shed()
	for _, r := range []struct {
		reason string
		n      int64
	}{{"busy", s.Busy}, {"conns", s.Conns}, {"tenant", s.Tenant}, {"memory", s.Memory}} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(r.n), r.reason)
	}
}

// IdentityConflict records that another process claimed this node's
// identity (cairn_identity_conflict), until the node restarts.
func (m *Metrics) IdentityConflict() { m.node.identityConflict.Set(1) }
