package replbench

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

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
