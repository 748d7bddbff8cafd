package telemetry

import "github.com/prometheus/client_golang/prometheus"

// collectMetrics count what the tombstone collector removed
// (reconcile.Collector, whose observer Metrics is).
type collectMetrics struct {
	tombstones prometheus.Counter
	changes    prometheus.Counter
}

func newCollectMetrics(f factory) collectMetrics {
	return collectMetrics{
		tombstones: f.counter("cairn_gc_tombstones_collected_total",
			"Tombstones removed from the node and every backend after the grace period."),
		changes: f.counter("cairn_gc_changes_trimmed_total",
			"Change-log entries removed once every backend's uploader had passed them."),
	}
}

// TombstonesCollected adds n collected tombstones.
func (m *Metrics) TombstonesCollected(n int) { m.collect.tombstones.Add(float64(n)) }

// ChangesTrimmed adds n trimmed change-log entries.
func (m *Metrics) ChangesTrimmed(n int) { m.collect.changes.Add(float64(n)) }
