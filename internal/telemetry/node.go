package telemetry

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnstore/cairn/internal/fault"
)

// nodeMetrics are the node's own failures, beside the backends' (see
// docs/runbook.md, "The node's own failures"): a store that failed a write
// and refuses every request since, and steps of the wall clock under the
// hybrid logical clock.
type nodeMetrics struct {
	storeFailures *prometheus.CounterVec // cause
	storeFailed   prometheus.Gauge
	clockJumps    *prometheus.CounterVec // direction
}

// The values of cairn_store_failures_total's cause label: disk_full when the
// write failed for want of space (ENOSPC, EDQUOT: fault.Exhausted),
// io_error for any other failed write or fsync of the log.
const (
	causeDiskFull = "disk_full"
	causeIOError  = "io_error"
)

func newNodeMetrics(f factory) nodeMetrics {
	m := nodeMetrics{
		storeFailures: f.counterVec("cairn_store_failures_total",
			"Times the local store failed a write of its log and began refusing every request, by cause (disk_full, io_error).", "cause"),
		storeFailed: f.gauge("cairn_store_failed",
			"1 while the local store refuses every request after a failed write (until the node restarts), else 0."),
		clockJumps: f.counterVec("cairn_clock_jumps_total",
			"Steps of the wall clock larger than a second seen between two readings of the hybrid logical clock, by direction (backward, forward).", "direction"),
	}
	for _, c := range []string{causeDiskFull, causeIOError} {
		m.storeFailures.WithLabelValues(c)
	}
	for _, d := range []string{"backward", "forward"} {
		m.clockJumps.WithLabelValues(d)
	}
	return m
}

// StoreFailed records that the local store failed with err and now refuses
// every request. It returns the cause label it counted under, for the log
// line that goes with it.
func (m *Metrics) StoreFailed(err error) string {
	cause := causeIOError
	if fault.ClassOf(err) == fault.Exhausted {
		cause = causeDiskFull
	}
	m.node.storeFailures.WithLabelValues(cause).Inc()
	m.node.storeFailed.Set(1)
	return cause
}

// ClockJumped counts one step of the wall clock (negative: backward).
func (m *Metrics) ClockJumped(step time.Duration) {
	d := "forward"
	if step < 0 {
		d = "backward"
	}
	m.node.clockJumps.WithLabelValues(d).Inc()
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
