package e2e

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsScrape: the real binary's admin listener serves /metrics in the
// Prometheus text format; after a PUT and two GETs the RED series of the
// document route, the cache and the store commit series have moved, and no
// label carries the tenant or the key.
func TestMetricsScrape(t *testing.T) {
	p := startNode(t, t.TempDir())
	admin := adminAddr(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range []struct {
		method, key, body string
		code              int
	}{
		{"PUT", "scraped", `{"v":1}`, http.StatusCreated},
		{"GET", "scraped", "", http.StatusOK},
		{"GET", "absent", "", http.StatusNotFound},
	} {
		resp, body, err := p.do(ctx, r.method, r.key, r.body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != r.code {
			t.Fatalf("%s %s: %d %s", r.method, r.key, resp.StatusCode, body)
		}
	}

	resp, err := httpClient.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	const route = "/v1/tenants/{tenant}/docs/{key...}"
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"cairn_http_requests_total", map[string]string{"route": route, "method": "PUT", "code": "201"}, 1},
		{"cairn_http_requests_total", map[string]string{"route": route, "method": "GET", "code": "200"}, 1},
		{"cairn_http_requests_total", map[string]string{"route": route, "method": "GET", "code": "404"}, 1},
		{"cairn_http_request_duration_seconds", map[string]string{"route": route, "method": "GET"}, 2},
		{"cairn_cache_hits_total", nil, 1},
		{"cairn_cache_misses_total", nil, 1},
		{"cairn_store_commit_duration_seconds", nil, 1},
	} {
		if got, ok := value(fams[c.name], c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v := lp.GetValue(); v == "demo" || v == "scraped" || v == "absent" {
					t.Errorf("%s has label %s=%q: tenants and keys must not be labels", name, lp.GetName(), v)
				}
			}
		}
	}
}

// adminAddr reads the admin listener's address from the line serve prints
// on stderr: "cairn … serving http://… (admin 127.0.0.1:PORT), …". The
// line is written before the URL and token on stdout, but stderr is copied
// by another goroutine of os/exec, so it is polled for (across processes,
// with a deadline).
func adminAddr(t *testing.T, p *proc) string {
	t.Helper()
	re := regexp.MustCompile(`\(admin ([0-9.]+:[0-9]+)[,)]`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(p.stderr.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no admin address in cairn's stderr within 10s:\n%s", p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// value is the series of f with labels: a counter's value or a histogram's
// count.
func value(f *dto.MetricFamily, labels map[string]string) (float64, bool) {
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}
