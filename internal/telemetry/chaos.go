package telemetry

import "github.com/prometheus/client_golang/prometheus"

// registerChaos registers the fault simulator's metrics. They exist on
// every node, so a dashboard or an alert does not depend on the flag; only
// a node run with --enable-chaos moves them.
func (m *Metrics) registerChaos(f factory) {
	m.chaosInjected = f.counterVec("cairn_chaos_injected_total",
		"Faults injected by the chaos simulator (--enable-chaos), by backend and fault.", "backend", "fault")
	m.chaosBallast = f.gauge("cairn_chaos_ballast_bytes",
		"Memory held as ballast by the chaos simulator (CAIRN_CHAOS_BALLAST).")
}

// ChaosInjected counts one injected fault; it implements chaos.Counter.
func (m *Metrics) ChaosInjected(backend, fault string) {
	m.chaosInjected.WithLabelValues(backend, fault).Inc()
}

// AddChaosBackend makes backend's injection series exist at zero for each
// fault, so rate() and increase() see the first injection.
func (m *Metrics) AddChaosBackend(backend string, faults []string) {
	for _, f := range faults {
		m.chaosInjected.WithLabelValues(backend, f)
	}
}

// SetChaosBallast records the size of the memory ballast.
func (m *Metrics) SetChaosBallast(bytes int64) { m.chaosBallast.Set(float64(bytes)) }

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}
