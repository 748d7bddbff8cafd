package telemetry

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resilience"
)

// exercise touches every metric family so that lint sees all of them.
func exercise(t *testing.T, tel *Telemetry) {
	t.Helper()
	m := tel.Metrics
	if err := m.RegisterCache(func() CacheStats {
		return CacheStats{Hits: 3, Misses: 1, Evictions: 2, Compactions: 1, CompactionNanos: 1_500_000_000, Bytes: 4096, Entries: 7}
	}); err != nil {
		t.Fatal(err)
	}
	m.OnCommit(8, 3*time.Millisecond)
	m.AddIngest("acme", IngestCounts{Records: 5, Bytes: 500, Malformed: 1, InvalidKey: 2})
	m.AddBackend("s3")
	m.ObserveBackend("s3", "put", nil, 20*time.Millisecond)
	m.ObserveBackend("s3", "put", fault.New(fault.Transient, fault.Context{}, "slow down"), time.Second)
	m.OnRetry("s3")
	m.OnBudgetRejection("s3")
	m.OnStateChange("s3", resilience.Closed, resilience.Open)
	m.ReconcileRound("s3", nil, 2*time.Second)
	m.ReconcileRound("s3", fmt.Errorf("tenant t: %w", heldErr{}), time.Second)
	m.ReconcileKeys("s3", 100)
	m.ReconcileAction("s3", "upload")
	m.ReconcileConflict("s3", "lww")
	m.ReconcileBytes("s3", 2048, 512)
	m.ReconcileQuarantined("s3")
	m.ScrubObjects("s3", 40)
	m.ScrubCycle("s3", 90*time.Second)
	m.ScrubFailed("s3")
	m.ScrubFailing("s3", 2)
	m.SetReplicationLag("s3", 1500*time.Millisecond)
}

// heldErr names its own outcome, as the mass-deletion guard's stop does.
type heldErr struct{}

func (heldErr) Error() string   { return "held" }
func (heldErr) Outcome() string { return "held" }

func TestMetricsLint(t *testing.T) {
	tel := setup(t, Config{NoGlobal: true, Version: "v1.2.3"})
	exercise(t, tel)
	srv := newFakeServer(tel, map[string]http.HandlerFunc{docRoute: func(w http.ResponseWriter, r *http.Request) {}})
	srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/tenants/a/docs/k", nil))

	problems, err := testutil.GatherAndLint(tel.Metrics.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestMetricsValues(t *testing.T) {
	tel := setup(t, Config{NoGlobal: true, Version: "v1.2.3"})
	exercise(t, tel)
	m := tel.Metrics
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"commit batch count", float64(testutil.CollectAndCount(m.commitBatch)), 1},
		{"ingest records", testutil.ToFloat64(m.ingestRecords), 5},
		{"ingest invalid keys", testutil.ToFloat64(m.ingestBadKey), 2},
		{"backend ok", testutil.ToFloat64(m.backendOps.WithLabelValues("s3", "put", "ok")), 1},
		{"backend transient", testutil.ToFloat64(m.backendOps.WithLabelValues("s3", "put", "transient")), 1},
		{"breaker open", testutil.ToFloat64(m.breakerState.WithLabelValues("s3", "open")), 1},
		{"breaker closed", testutil.ToFloat64(m.breakerState.WithLabelValues("s3", "closed")), 0},
		{"retries", testutil.ToFloat64(m.retries.WithLabelValues("s3")), 1},
		{"rounds ok", testutil.ToFloat64(m.reconcileRounds.WithLabelValues("s3", "ok")), 1},
		{"rounds held", testutil.ToFloat64(m.reconcileRounds.WithLabelValues("s3", "held")), 1},
		{"rounds unknown", testutil.ToFloat64(m.reconcileRounds.WithLabelValues("s3", "unknown")), 0},
		{"lag", testutil.ToFloat64(m.replicationLag), 1.5},
		{"bytes up", testutil.ToFloat64(m.reconcileBytes.WithLabelValues("s3", "up")), 2048},
		{"bytes down", testutil.ToFloat64(m.reconcileBytes.WithLabelValues("s3", "down")), 512},
		{"quarantined", testutil.ToFloat64(m.reconcileQuarantined.WithLabelValues("s3")), 1},
		{"scrubbed", testutil.ToFloat64(m.scrubObjects.WithLabelValues("s3")), 40},
		{"scrub cycle", testutil.ToFloat64(m.scrubCycle.WithLabelValues("s3")), 90},
		{"scrub failed", testutil.ToFloat64(m.scrubFailures.WithLabelValues("s3")), 1},
		{"scrub failing", testutil.ToFloat64(m.scrubFailing.WithLabelValues("s3")), 2},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	const cache = `
# HELP cairn_cache_compaction_seconds_total Wall time spent rebuilding shards.
# TYPE cairn_cache_compaction_seconds_total counter
cairn_cache_compaction_seconds_total 1.5
# HELP cairn_cache_hits_total Cache lookups that found an entry (tombstones included).
# TYPE cairn_cache_hits_total counter
cairn_cache_hits_total 3
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(cache),
		"cairn_cache_hits_total", "cairn_cache_compaction_seconds_total"); err != nil {
		t.Error(err)
	}
	const build = `
# HELP cairn_build_info Always 1; the labels name the build.
# TYPE cairn_build_info gauge
`
	if n, err := testutil.GatherAndCount(m.Registry(), "cairn_build_info"); err != nil || n != 1 {
		t.Errorf("cairn_build_info series = %d, %v; want 1%s", n, err, build)
	}
	if err := m.RegisterCache(func() CacheStats { return CacheStats{} }); err == nil {
		t.Error("second RegisterCache succeeded, want an error")
	}
	if err := m.RegisterDisk(func() (int64, int64) { return 100 << 20, 88 << 20 }); err != nil {
		t.Fatal(err)
	}
	const disk = `
# HELP cairn_store_disk_free_bytes Free space of the data directory's file system at the store's last measure (four a second).
# TYPE cairn_store_disk_free_bytes gauge
cairn_store_disk_free_bytes 1.048576e+08
# HELP cairn_store_disk_reserve_bytes Free space the store keeps on the data directory's file system: it refuses writes while less is free.
# TYPE cairn_store_disk_reserve_bytes gauge
cairn_store_disk_reserve_bytes 9.2274688e+07
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(disk), "cairn_store_disk_free_bytes", "cairn_store_disk_reserve_bytes"); err != nil {
		t.Error(err)
	}
}

// TestREDScrape drives the middleware and checks the RED series through a
// /metrics scrape, as Prometheus would see them.
func TestREDScrape(t *testing.T) {
	tel := setup(t, Config{NoGlobal: true})
	release := make(chan struct{})
	entered := make(chan struct{})
	srv := newFakeServer(tel, map[string]http.HandlerFunc{
		docRoute: func(w http.ResponseWriter, r *http.Request) {
			if r.PathValue("key") == "slow" {
				close(entered)
				<-release
			}
			if r.PathValue("key") == "missing" {
				w.WriteHeader(http.StatusNotFound)
			}
		},
	})
	route := "/v1/tenants/{tenant}/docs/{key...}"
	m := tel.Metrics
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/tenants/a/docs/slow", nil))
	}()
	<-entered
	if got := m.httpInFlight.gauge(route).Load(); got != 1 {
		t.Errorf("in flight during a request = %v, want 1", got)
	}
	close(release)
	<-done
	for range 3 {
		srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/tenants/a/docs/missing", nil))
	}
	srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("HEAD", "/v1/tenants/a/docs/k", nil))

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, line := range []string{
		`cairn_http_requests_total{code="200",method="GET",route="` + route + `"} 1`,
		`cairn_http_requests_total{code="404",method="GET",route="` + route + `"} 3`,
		`cairn_http_requests_total{code="200",method="HEAD",route="` + route + `"} 1`,
		`cairn_http_request_duration_seconds_count{method="GET",route="` + route + `"} 4`,
		`cairn_http_requests_in_flight{route="` + route + `"} 0`,
		`go_goroutines `,
		`process_`,
	} {
		if !strings.Contains(string(body), line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if strings.Contains(string(body), `tenant=`) || strings.Contains(string(body), `"a"`) {
		t.Error("/metrics carries a tenant label or value")
	}
}

func TestOutcome(t *testing.T) {
	if got := outcome(nil); got != "ok" {
		t.Errorf("outcome(nil) = %q", got)
	}
	if got := outcome(errors.New("x")); got == "" || got == "ok" {
		t.Errorf("outcome(plain error) = %q, want a class name", got)
	}
}

// TestAlertedCountersExistAtZero: the counters the shipped alerts take the
// increase of exist at 0 from AddBackend on. Prometheus's increase()
// counts nothing for a series' first sample, so a series made by the
// first corrupt object or guard stop would hide that event.
func TestAlertedCountersExistAtZero(t *testing.T) {
	tel := setup(t, Config{NoGlobal: true})
	m := tel.Metrics
	m.AddBackend("s3")
	// Counted first: reading a series below would make it.
	want := map[string]int{
		"cairn_reconcile_actions_total":           2,
		"cairn_reconcile_rounds_total":            len(fault.Classes()) + 2, // ok, held
		"cairn_backend_breaker_transitions_total": 3,
		"cairn_reconcile_keys_total":              1,
		"cairn_reconcile_quarantined_total":       1,
		"cairn_reconcile_conflicts_total":         4,
	}
	for name, n := range want {
		if got, err := testutil.GatherAndCount(m.Registry(), name); err != nil || got != n {
			t.Errorf("%s: %d series (%v) after AddBackend, want %d", name, got, err, n)
		}
	}
	for _, tc := range []struct {
		name string
		c    prometheus.Counter
	}{
		{"corrupt", m.reconcileActions.WithLabelValues("s3", "corrupt")},
		{"guard_stop", m.reconcileActions.WithLabelValues("s3", "guard_stop")},
		{"round exhausted", m.reconcileRounds.WithLabelValues("s3", "exhausted")},
		{"round unknown", m.reconcileRounds.WithLabelValues("s3", "unknown")},
		{"to open", m.breakerTransitions.WithLabelValues("s3", "open")},
	} {
		if v := testutil.ToFloat64(tc.c); v != 0 {
			t.Errorf("%s = %v, want 0", tc.name, v)
		}
	}
}
