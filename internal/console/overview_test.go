package console

import (
	"context"
	"encoding/json"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/servertest"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// TestOverviewFromTelemetry: the overview's rates come from the node's own
// registry, filled by the API's telemetry middleware, as differences
// between two polls.
func TestOverviewFromTelemetry(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{NoGlobal: true, Exporter: "none"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	if err := tel.Metrics.RegisterCache(func() telemetry.CacheStats {
		return telemetry.CacheStats{Hits: 3, Misses: 1, Bytes: 2048, Entries: 7}
	}); err != nil {
		t.Fatal(err)
	}
	mem := &servertest.Mem{}
	api, err := server.New(server.Options{Docs: mem, Auth: server.Auth{Admin: [][32]byte{server.HashToken(admin)}},
		Middleware: []server.Middleware{tel.Middleware(nil)}})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *Options) { o.API, o.Registry = api, tel.Metrics.Registry() })
	ck, _ := f.signIn(t, local, admin)
	read := func() Overview {
		t.Helper()
		resp, body := f.req("GET", "/console/api/overview", local, ck, "", nil)
		var ov Overview
		if err := json.Unmarshal([]byte(body), &ov); resp.StatusCode != 200 || err != nil {
			t.Fatalf("overview: %d %s", resp.StatusCode, body)
		}
		return ov
	}
	if ov := read(); ov.IntervalSeconds != 0 || ov.RequestRate != 0 || ov.StoreBytes != 42 || ov.NodeID != "n1" {
		t.Fatalf("first poll: %+v", ov)
	}
	for i := range 20 {
		r := httptest.NewRequest("PUT", "/v1/tenants/acme/docs/k", strings.NewReader(`{"i":1}`))
		r.Header.Set("Authorization", "Bearer "+admin)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		if w.Code >= 300 {
			t.Fatalf("PUT %d: %d %s", i, w.Code, w.Body)
		}
	}
	f.clock.add(2 * time.Second)
	ov := read()
	if ov.IntervalSeconds != 2 || ov.RequestRate != 10 || ov.ErrorRate != 0 {
		t.Fatalf("second poll: interval %v, rate %v, errors %v", ov.IntervalSeconds, ov.RequestRate, ov.ErrorRate)
	}
	if len(ov.Routes) != 1 || ov.Routes[0].Route != "/v1/tenants/{tenant}/docs/{key...}" || ov.Routes[0].P99ms == nil || ov.Routes[0].Requests != 20 {
		t.Fatalf("routes: %+v", ov.Routes)
	}
	if ov.CacheHitRatio == nil || *ov.CacheHitRatio != 0.75 || ov.CacheBytes != 2048 || ov.CacheEntries != 7 {
		t.Fatalf("cache: %v %v %v", ov.CacheHitRatio, ov.CacheBytes, ov.CacheEntries)
	}
	// A poll within a second of the last reuses its rates.
	f.clock.add(100 * time.Millisecond)
	if again := read(); again.RequestRate != 10 {
		t.Fatalf("a close poll: rate %v", again.RequestRate)
	}
}

// TestP99: the percentile is interpolated inside the bucket that holds it,
// over the requests between two samples.
func TestP99(t *testing.T) {
	bk := func(pairs ...float64) []*dto.Bucket {
		var out []*dto.Bucket
		for i := 0; i < len(pairs); i += 2 {
			c, u := uint64(pairs[i+1]), pairs[i]
			out = append(out, &dto.Bucket{UpperBound: &u, CumulativeCount: &c})
		}
		return out
	}
	for _, c := range []struct {
		name       string
		prev, cur  routeSample
		want       float64
		wantNoData bool
	}{
		{"all in the first bucket", routeSample{}, routeSample{count: 100, buckets: bk(0.001, 100, 0.01, 100)}, 0.99, false},
		{"the tail in the second", routeSample{}, routeSample{count: 100, buckets: bk(0.001, 50, 0.01, 100)}, 1 + 9*49.0/50, false},
		{"only the interval counts", routeSample{count: 100, buckets: bk(0.001, 100, 0.01, 100)},
			routeSample{count: 200, buckets: bk(0.001, 100, 0.01, 200)}, 1 + 9*0.99, false},
		{"nothing served", routeSample{count: 5}, routeSample{count: 5}, 0, true},
	} {
		got, ok := p99(&c.prev, &c.cur)
		if ok == c.wantNoData || (ok && math.Abs(got-c.want) > 1e-9) {
			t.Errorf("%s: p99 = %v, %v; want %v ms", c.name, got, ok, c.want)
		}
	}
}

// TestOverviewShedIsTheNodes: the overview's shed count is what the node
// refused at its own limits (cairn_shed_total), not every 429 and 503: a
// tenant catching up answers 503 without anything being shed.
func TestOverviewShedIsTheNodes(t *testing.T) {
	counter := func(v float64, labels ...string) *dto.Metric {
		m := &dto.Metric{Counter: &dto.Counter{Value: ptr(v)}}
		for i := 0; i+1 < len(labels); i += 2 {
			m.Label = append(m.Label, &dto.LabelPair{Name: ptr(labels[i]), Value: ptr(labels[i+1])})
		}
		return m
	}
	mfs := []*dto.MetricFamily{
		{Name: ptr("cairn_http_requests_total"), Metric: []*dto.Metric{
			counter(5, "route", "/v1/tenants/{tenant}/docs", "code", "503"),
			counter(3, "route", "/v1/tenants/{tenant}/docs/{key...}", "code", "429"),
		}},
		{Name: ptr("cairn_shed_total"), Metric: []*dto.Metric{counter(2, "reason", "busy"), counter(1, "reason", "tenant")}},
	}
	if s := sampleOf(mfs, time.Now()); s.shed != 3 {
		t.Fatalf("shed %v, want cairn_shed_total's 3", s.shed)
	}
}

func ptr[T any](v T) *T { return &v }

// TestOverviewDiskAndStore: the overview carries the data directory's free
// space, what the store keeps free, and whether the store failed, from the
// node's gauges; without them, the space is null (not measured), not 0.
func TestOverviewDiskAndStore(t *testing.T) {
	gauge := func(name string, v float64) *dto.MetricFamily {
		return &dto.MetricFamily{Name: ptr(name), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: ptr(v)}}}}
	}
	ov := compare(nil, sampleOf([]*dto.MetricFamily{gauge("cairn_store_disk_free_bytes", 50<<20),
		gauge("cairn_store_disk_reserve_bytes", 88<<20), gauge("cairn_store_failed", 1)}, time.Now()))
	if ov.DiskFree == nil || *ov.DiskFree != 50<<20 || ov.DiskReserve == nil || *ov.DiskReserve != 88<<20 || !ov.StoreFailed {
		t.Errorf("overview %+v; want 50 MiB free of 88 MiB kept, and the store failed", ov)
	}
	if ov := compare(nil, sampleOf(nil, time.Now())); ov.DiskFree != nil || ov.StoreFailed {
		t.Errorf("without the gauges: %+v; want no disk figures and the store not failed", ov)
	}
}
