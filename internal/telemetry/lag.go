package telemetry

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// lagGauge is cairn_replication_lag_seconds: one series per backend, read
// from a function at scrape time. Lag grows while nothing happens (a
// backend that is down uploads nothing, so no event would move a set
// gauge), which is why it is computed when scraped.
type lagGauge struct {
	desc *prometheus.Desc

	mu    sync.Mutex // guards funcs
	funcs map[string]func() time.Duration
}

var _ prometheus.Collector = (*lagGauge)(nil)

func newLagGauge(reg prometheus.Registerer) *lagGauge {
	g := &lagGauge{
		desc: prometheus.NewDesc("cairn_replication_lag_seconds",
			"Age of the oldest local change not yet uploaded to the backend (0 when caught up).", []string{"backend"}, nil),
		funcs: map[string]func() time.Duration{},
	}
	reg.MustRegister(g)
	return g
}

func (g *lagGauge) set(backend string, f func() time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.funcs[backend] = f
}

func (g *lagGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *lagGauge) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	funcs := make(map[string]func() time.Duration, len(g.funcs))
	for b, f := range g.funcs {
		funcs[b] = f
	}
	g.mu.Unlock()
	for b, f := range funcs { // outside the lock: f may take its own
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, f().Seconds(), b)
	}
}
