package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// feedMetrics count the change feed (reconcile.FeedObserver, whose
// observer Metrics is). The peer label is a node id: one series per node
// sharing the backend, never per tenant.
type feedMetrics struct {
	published *prometheus.CounterVec // backend
	read      *prometheus.CounterVec // backend
	entries   *prometheus.CounterVec // backend, direction
	fallbacks *prometheus.CounterVec // backend
	lag       *prometheus.GaugeVec   // backend, peer
}

func newFeedMetrics(f factory) feedMetrics {
	return feedMetrics{
		published: f.counterVec("cairn_feed_objects_published_total",
			"Change-feed objects this node wrote, by backend.", "backend"),
		read: f.counterVec("cairn_feed_objects_read_total",
			"Peers' change-feed objects read and applied, by backend.", "backend"),
		entries: f.counterVec("cairn_feed_entries_total",
			"Change-feed entries, by backend and direction (published, applied).", "backend", "direction"),
		fallbacks: f.counterVec("cairn_feed_fallbacks_total",
			"Gaps in a peer's feed (a missing, trimmed or damaged object) that made a tenant fall back to a round, by backend.", "backend"),
		lag: f.gaugeVec("cairn_feed_lag_seconds",
			"Time from a peer's publication of its last feed object read to its application here, by backend and peer node id.", "backend", "peer"),
	}
}

// FeedPublished counts one feed object of entries entries written.
func (m *Metrics) FeedPublished(backend string, entries int) {
	m.feed.published.WithLabelValues(backend).Inc()
	m.feed.entries.WithLabelValues(backend, "published").Add(float64(entries))
}

// FeedRead counts one peer's feed object read and applied, and sets the
// peer's feed lag.
func (m *Metrics) FeedRead(backend, peer string, entries int, lag time.Duration) {
	m.feed.read.WithLabelValues(backend).Inc()
	m.feed.entries.WithLabelValues(backend, "applied").Add(float64(entries))
	m.feed.lag.WithLabelValues(backend, peer).Set(lag.Seconds())
}

// FeedCaughtUp sets peer's feed lag to 0: everything it published was read.
func (m *Metrics) FeedCaughtUp(backend, peer string) {
	m.feed.lag.WithLabelValues(backend, peer).Set(0)
}

// FeedFallback counts one gap that made a tenant fall back to a round.
func (m *Metrics) FeedFallback(backend string) { m.feed.fallbacks.WithLabelValues(backend).Inc() }
