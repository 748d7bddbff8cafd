package resp

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"github.com/cairnstore/cairn/internal/fault"
)

// attrOutcome is the span attribute of a command answered with an error.
const attrOutcome = attribute.Key("cairn.resp.outcome")

// metrics are the front's RED metrics, labelled by command (a fixed set:
// the command table) as HTTP's are by route.
type metrics struct {
	commands *prometheus.CounterVec // command, outcome
	unknown  prometheus.Counter     // commands not in the table
	conns    prometheus.Gauge
	cmds     []*cmdMetrics // by command.idx
}

// cmdMetrics are one command's children, resolved once so that a command
// does no label hashing.
type cmdMetrics struct {
	duration prometheus.Observer
	ok       prometheus.Counter
	spanName string
	vec      *prometheus.CounterVec // curried with the command

	mu       sync.Mutex // guards outcomes
	outcomes map[fault.Class]prometheus.Counter
}

func (m *cmdMetrics) outcome(c fault.Class) prometheus.Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	ctr, found := m.outcomes[c]
	if !found {
		ctr = m.vec.WithLabelValues(c.String())
		m.outcomes[c] = ctr
	}
	return ctr
}

var latencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
}

// newMetrics registers the metrics on reg (none when nil) and resolves
// each command's children.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_resp_commands_total",
			Help: "RESP commands served, by command and outcome (ok or the fault class of the error reply)."},
			[]string{"command", "outcome"}),
		unknown: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_resp_unknown_commands_total",
			Help: "RESP commands refused as unknown."}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_resp_connections",
			Help: "RESP connections open now."}),
	}
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cairn_resp_command_duration_seconds",
		Help: "Time to serve a RESP command, from its dispatch to its reply being buffered.", Buckets: latencyBuckets},
		[]string{"command"})
	if reg != nil {
		for _, c := range []prometheus.Collector{m.commands, m.unknown, m.conns, duration} {
			if err := reg.Register(c); err != nil {
				return nil, fault.E(fault.Config, fault.Context{Op: "resp.metrics"}, err)
			}
		}
	}
	m.cmds = make([]*cmdMetrics, len(commands))
	for _, cmd := range commands {
		m.cmds[cmd.idx] = &cmdMetrics{
			duration: duration.WithLabelValues(cmd.name),
			ok:       m.commands.WithLabelValues(cmd.name, "ok"),
			spanName: "RESP " + cmd.name,
			vec:      m.commands.MustCurryWith(prometheus.Labels{"command": cmd.name}),
			outcomes: map[fault.Class]prometheus.Counter{},
		}
	}
	return m, nil
}
