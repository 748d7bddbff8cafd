package console

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/cairnstore/cairn/internal/fault"
)

// Overview is the body of GET /console/api/overview.
type Overview struct {
	NodeID        string  `json:"node_id"`
	Version       string  `json:"version"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	// IntervalSeconds is the time the rates are measured over; 0 on the
	// first poll, which has no earlier sample.
	IntervalSeconds float64     `json:"interval_seconds"`
	RequestRate     float64     `json:"request_rate"`
	ErrorRate       float64     `json:"error_rate"` // 5xx answers per second
	ShedRate        float64     `json:"shed_rate"`  // requests refused at the node's limits per second (cairn_shed_total)
	Shed            float64     `json:"shed_total"`
	Routes          []RouteRate `json:"routes"`
	CacheHitRatio   *float64    `json:"cache_hit_ratio"` // nil before any lookup
	CacheBytes      float64     `json:"cache_bytes"`
	CacheEntries    float64     `json:"cache_entries"`
	StoreBytes      int64       `json:"store_bytes"`
	// DiskFree and DiskReserve are the data directory's free space and what
	// the store keeps free (it refuses writes below it); nil when the node
	// does not measure them.
	DiskFree    *float64 `json:"disk_free_bytes"`
	DiskReserve *float64 `json:"disk_reserve_bytes"`
	// StoreFailed: the store failed and refuses every request until the
	// node restarts (cairn_store_failed, runbook 14).
	StoreFailed bool `json:"store_failed"`
}

// RouteRate is one route's figures over the interval.
type RouteRate struct {
	Route     string   `json:"route"`
	Requests  float64  `json:"requests_total"`
	Rate      float64  `json:"rate"`
	ErrorRate float64  `json:"error_rate"`
	P99ms     *float64 `json:"p99_ms"` // nil when the route served nothing in the interval
}

// sample is what one read of the registry keeps for the next: per route,
// the request counts and the latency histogram.
type sample struct {
	at     time.Time
	routes map[string]*routeSample
	shed   float64
	hits   float64
	misses float64
	// cacheBytes and cacheEntries are the cache's size now.
	cacheBytes, cacheEntries float64
	// The data directory's room and the store's state now.
	diskFree, diskReserve *float64
	storeFailed           bool
}

type routeSample struct {
	total, errors float64
	buckets       []*dto.Bucket // cumulative, summed over methods
	count         float64
}

// rates keeps the last sample, so each poll reports the rates since the
// one before. Polls closer than minInterval reuse the last answer's rates.
type rates struct {
	mu   sync.Mutex // guards last and out
	last *sample
	out  *Overview
}

const minInterval = time.Second

// overview serves GET /console/api/overview.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, _ *session) {
	mfs, err := c.o.Registry.Gather()
	if err != nil {
		c.fail(w, r, fault.E(fault.Unknown, fault.Context{Op: "console.overview"}, err))
		return
	}
	now := c.o.Now()
	cur := sampleOf(mfs, now)
	ov := c.rates.next(cur)
	ov.NodeID, ov.Version = c.o.NodeID, c.o.Version
	ov.UptimeSeconds = now.Sub(c.o.Started).Seconds()
	ov.StoreBytes = c.o.Node.StoreBytes()
	writeJSON(w, ov)
}

// next returns the overview of cur against the last sample.
func (rt *rates) next(cur *sample) Overview {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.out != nil && rt.last != nil && cur.at.Sub(rt.last.at) < minInterval {
		ov := *rt.out
		return ov
	}
	ov := compare(rt.last, cur)
	rt.last, rt.out = cur, &ov
	return ov
}

// compare computes the overview's figures of cur, its rates against prev
// (nil on the first poll).
func compare(prev, cur *sample) Overview {
	ov := Overview{Shed: cur.shed, Routes: []RouteRate{}, CacheBytes: cur.cacheBytes, CacheEntries: cur.cacheEntries,
		DiskFree: cur.diskFree, DiskReserve: cur.diskReserve, StoreFailed: cur.storeFailed}
	if n := cur.hits + cur.misses; n > 0 {
		ratio := cur.hits / n
		ov.CacheHitRatio = &ratio
	}
	var secs float64
	if prev != nil {
		secs = cur.at.Sub(prev.at).Seconds()
		ov.IntervalSeconds = secs
		if secs > 0 {
			ov.ShedRate = (cur.shed - prev.shed) / secs
		}
	}
	for name, rs := range cur.routes {
		rr := RouteRate{Route: name, Requests: rs.total}
		var pr *routeSample
		if prev != nil {
			pr = prev.routes[name]
		}
		if pr == nil {
			pr = &routeSample{}
		}
		if secs > 0 {
			rr.Rate = (rs.total - pr.total) / secs
			rr.ErrorRate = (rs.errors - pr.errors) / secs
			if p, ok := p99(pr, rs); ok {
				rr.P99ms = &p
			}
		}
		ov.RequestRate += rr.Rate
		ov.ErrorRate += rr.ErrorRate
		ov.Routes = append(ov.Routes, rr)
	}
	slices.SortFunc(ov.Routes, func(a, b RouteRate) int {
		if a.Requests != b.Requests {
			if a.Requests > b.Requests {
				return -1
			}
			return 1
		}
		if a.Route < b.Route {
			return -1
		}
		return 1
	})
	return ov
}

// p99 estimates the 99th percentile latency of the requests between two
// samples from their histogram buckets, interpolating linearly inside the
// bucket, as Prometheus's histogram_quantile does.
func p99(prev, cur *routeSample) (float64, bool) {
	n := cur.count - prev.count
	if n <= 0 || len(cur.buckets) == 0 {
		return 0, false
	}
	want := 0.99 * n
	lower, below := 0.0, 0.0
	for i, b := range cur.buckets {
		c := float64(b.GetCumulativeCount())
		if i < len(prev.buckets) {
			c -= float64(prev.buckets[i].GetCumulativeCount())
		}
		upper := b.GetUpperBound()
		if c >= want {
			if c == below {
				return upper * 1000, true
			}
			return (lower + (upper-lower)*(want-below)/(c-below)) * 1000, true
		}
		lower, below = upper, c
	}
	return lower * 1000, true // past the last bucket: its bound is all that is known
}

// sampleOf reads the figures the overview needs from a gathered registry.
func sampleOf(mfs []*dto.MetricFamily, at time.Time) *sample {
	s := &sample{at: at, routes: map[string]*routeSample{}}
	route := func(m *dto.Metric) *routeSample {
		name := label(m, "route")
		rs := s.routes[name]
		if rs == nil {
			rs = &routeSample{}
			s.routes[name] = rs
		}
		return rs
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "cairn_http_requests_total":
			for _, m := range mf.GetMetric() {
				v := m.GetCounter().GetValue()
				rs := route(m)
				rs.total += v
				code, _ := strconv.Atoi(label(m, "code"))
				if code >= 500 {
					rs.errors += v
				}
			}
		case "cairn_http_request_duration_seconds":
			for _, m := range mf.GetMetric() {
				rs := route(m)
				h := m.GetHistogram()
				rs.count += float64(h.GetSampleCount())
				rs.buckets = addBuckets(rs.buckets, h.GetBucket())
			}
		case "cairn_shed_total":
			// What the node refused at its own limits, over HTTP and RESP:
			// not every 429 and 503 (a tenant catching up, a full disk).
			s.shed = sum(mf)
		case "cairn_cache_hits_total":
			s.hits = sum(mf)
		case "cairn_cache_misses_total":
			s.misses = sum(mf)
		case "cairn_cache_bytes":
			s.cacheBytes = sum(mf)
		case "cairn_cache_entries":
			s.cacheEntries = sum(mf)
		case "cairn_store_disk_free_bytes":
			v := sum(mf)
			s.diskFree = &v
		case "cairn_store_disk_reserve_bytes":
			v := sum(mf)
			s.diskReserve = &v
		case "cairn_store_failed":
			s.storeFailed = sum(mf) > 0
		}
	}
	return s
}

// addBuckets adds b to acc bucket by bucket (the routes' histograms share
// their bounds).
func addBuckets(acc, b []*dto.Bucket) []*dto.Bucket {
	if acc == nil {
		out := make([]*dto.Bucket, len(b))
		for i, x := range b {
			c, u := x.GetCumulativeCount(), x.GetUpperBound()
			out[i] = &dto.Bucket{CumulativeCount: &c, UpperBound: &u}
		}
		return out
	}
	for i := range min(len(acc), len(b)) {
		c := acc[i].GetCumulativeCount() + b[i].GetCumulativeCount()
		acc[i].CumulativeCount = &c
	}
	return acc
}

func sum(mf *dto.MetricFamily) float64 {
	var t float64
	for _, m := range mf.GetMetric() {
		switch {
		case m.Counter != nil:
			t += m.GetCounter().GetValue()
		case m.Gauge != nil:
			t += m.GetGauge().GetValue()
		case m.Untyped != nil:
			t += m.GetUntyped().GetValue()
		}
	}
	if math.IsNaN(t) {
		return 0
	}
	return t
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
