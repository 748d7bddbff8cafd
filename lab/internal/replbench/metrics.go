package replbench

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ops is a scrape of a node's cairn_backend_operations_total: calls by
// operation (backend.put, backend.stat, …), every outcome counted.
type ops map[string]float64

func (o ops) total() float64 {
	var t float64
	for _, v := range o {
		t += v
	}
	return t
}

// minus returns o − before, operation by operation.
func (o ops) minus(before ops) ops {
	d := ops{}
	for k, v := range o {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

// String lists the operations as "put 1000, stat 1000", largest first.
func (o ops) String() string {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if o[keys[i]] != o[keys[j]] {
			return o[keys[i]] > o[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.0f", strings.TrimPrefix(k, "backend."), o[k])
	}
	return b.String()
}

// backendOps scrapes n's backend calls.
func (c *cluster) backendOps(ctx context.Context, n *node) (ops, error) {
	fams, err := c.scrape(ctx, n)
	if err != nil {
		return nil, err
	}
	out := ops{}
	f := fams["cairn_backend_operations_total"]
	if f == nil {
		return out, nil
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "op" {
				out[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

// timing is the sum and count of a histogram's observations.
type timing struct{ sum, count float64 }

// mean returns the mean observation since before, in milliseconds.
func (t timing) mean(before timing) float64 {
	if t.count == before.count {
		return 0
	}
	return 1000 * (t.sum - before.sum) / (t.count - before.count)
}

// timings scrapes n's backend put and store commit durations.
func (c *cluster) timings(ctx context.Context, n *node) (put, commit timing, err error) {
	fams, err := c.scrape(ctx, n)
	if err != nil {
		return put, commit, err
	}
	if f := fams["cairn_backend_operation_duration_seconds"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == "backend.put" {
					put.sum += m.GetHistogram().GetSampleSum()
					put.count += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	if f := fams["cairn_store_commit_duration_seconds"]; f != nil {
		for _, m := range f.GetMetric() {
			commit.sum += m.GetHistogram().GetSampleSum()
			commit.count += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return put, commit, nil
}

// feedCounts scrapes n's feed entries published and applied and its
// fallbacks to a round.
func (c *cluster) feedCounts(ctx context.Context, n *node) (published, applied, fallbacks float64, err error) {
	fams, err := c.scrape(ctx, n)
	if err != nil {
		return 0, 0, 0, err
	}
	if f := fams["cairn_feed_entries_total"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				switch {
				case l.GetName() != "direction":
				case l.GetValue() == "published":
					published += m.GetCounter().GetValue()
				case l.GetValue() == "applied":
					applied += m.GetCounter().GetValue()
				}
			}
		}
	}
	if f := fams["cairn_feed_fallbacks_total"]; f != nil {
		for _, m := range f.GetMetric() {
			fallbacks += m.GetCounter().GetValue()
		}
	}
	return published, applied, fallbacks, nil
}

// scrape reads n's metrics.
func (c *cluster) scrape(ctx context.Context, n *node) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", n.admin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: %s", n.name, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s /metrics: %w", n.name, err)
	}
	return fams, nil
}
