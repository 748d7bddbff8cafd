package telemetry

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// inflightVec is a gauge vector with one label whose values are plain
// atomic integers, read when Prometheus scrapes. A prometheus.Gauge would
// do, but its Inc and Dec are compare-and-swap loops on a float64 and the
// middleware calls both on every request; an atomic add is cheaper, and
// in-flight counts are integers anyway.
type inflightVec struct {
	desc *prometheus.Desc
	vals atomic.Pointer[map[string]*atomic.Int64] // by label value; copy-on-write, never modified once stored

	mu sync.Mutex // serialises inserts into vals
}

var _ prometheus.Collector = (*inflightVec)(nil)

// newInflightVec registers the vector on reg; as with the factory's
// methods, a registration failure is a programmer error and panics.
func newInflightVec(reg prometheus.Registerer, name, help, label string) *inflightVec {
	v := &inflightVec{desc: prometheus.NewDesc(name, help, []string{label}, nil)}
	v.vals.Store(&map[string]*atomic.Int64{})
	reg.MustRegister(v)
	return v
}

// gauge returns the counter of label value lv, creating it (at 0, and
// exported from then on) the first time.
func (v *inflightVec) gauge(lv string) *atomic.Int64 {
	if g, ok := (*v.vals.Load())[lv]; ok {
		return g
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	vals := *v.vals.Load()
	if g, ok := vals[lv]; ok {
		return g
	}
	next := make(map[string]*atomic.Int64, len(vals)+1)
	for k, g := range vals {
		next[k] = g
	}
	g := new(atomic.Int64)
	next[lv] = g
	v.vals.Store(&next)
	return g
}

func (v *inflightVec) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

func (v *inflightVec) Collect(ch chan<- prometheus.Metric) {
	for lv, g := range *v.vals.Load() {
		ch <- prometheus.MustNewConstMetric(v.desc, prometheus.GaugeValue, float64(g.Load()), lv)
	}
}
