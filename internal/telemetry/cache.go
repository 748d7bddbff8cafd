package telemetry

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// CacheStats is what the cache metrics read. Its fields are those of
// cache.Stats, in the same order, so the node converts with
// telemetry.CacheStats(c.Stats()); a field added to one and not the other
// breaks that conversion at compile time, which is the point.
type CacheStats struct {
	Hits            uint64
	Misses          uint64
	Evictions       uint64
	Compactions     uint64
	CompactionNanos uint64
	Bytes           int64
	Entries         int64
	FillsRejected   uint64
	SetsRejected    uint64
	LeasesDropped   uint64
}

// RegisterCache exposes the cache's counters, read from stats at scrape
// time. It is a collector rather than one CounterFunc per figure so that a
// scrape walks the cache's shards once, not ten times. It fails if called
// twice.
func (m *Metrics) RegisterCache(stats func() CacheStats) error {
	if err := m.reg.Register(&cacheCollector{stats: stats}); err != nil {
		return fmt.Errorf("telemetry: register cache metrics: %w", err)
	}
	return nil
}

var (
	cacheHits          = cacheDesc("cairn_cache_hits_total", "Cache lookups that found an entry (tombstones included).")
	cacheMisses        = cacheDesc("cairn_cache_misses_total", "Cache lookups that found nothing.")
	cacheEvictions     = cacheDesc("cairn_cache_evictions_total", "Entries evicted to stay within the memory budget.")
	cacheCompactions   = cacheDesc("cairn_cache_compactions_total", "Shard rebuilds completed.")
	cacheCompactionSec = cacheDesc("cairn_cache_compaction_seconds_total", "Wall time spent rebuilding shards.")
	cacheBytes         = cacheDesc("cairn_cache_bytes", "Bytes charged against the cache budget.")
	cacheEntries       = cacheDesc("cairn_cache_entries", "Entries resident in the cache.")
	cacheFillsRejected = cacheDesc("cairn_cache_fills_rejected_total", "Fills that did not install their entry (a newer version won or the lease was gone).")
	cacheSetsRejected  = cacheDesc("cairn_cache_sets_rejected_total", "Sets that did not install their entry (an equal or newer version was cached).")
	cacheLeasesDropped = cacheDesc("cairn_cache_leases_dropped_total", "Fill leases dropped because a shard hit its lease cap.")
)

func cacheDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, nil, nil)
}

type cacheCollector struct{ stats func() CacheStats }

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheHits, cacheMisses, cacheEvictions, cacheCompactions,
		cacheCompactionSec, cacheBytes, cacheEntries, cacheFillsRejected, cacheSetsRejected, cacheLeasesDropped} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(cacheHits, float64(s.Hits))
	counter(cacheMisses, float64(s.Misses))
	counter(cacheEvictions, float64(s.Evictions))
	counter(cacheCompactions, float64(s.Compactions))
	counter(cacheCompactionSec, float64(s.CompactionNanos)/1e9)
	gauge(cacheBytes, float64(s.Bytes))
	gauge(cacheEntries, float64(s.Entries))
	counter(cacheFillsRejected, float64(s.FillsRejected))
	counter(cacheSetsRejected, float64(s.SetsRejected))
	counter(cacheLeasesDropped, float64(s.LeasesDropped))
}
