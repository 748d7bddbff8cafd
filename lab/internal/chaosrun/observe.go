package chaosrun

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cairnstore/cairn/api"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Metrics is a scrape of a node's /metrics: series name{labels} → value
// (a histogram's count as name_count).
type Metrics map[string]float64

// Scrape reads the node's metrics.
func (n *Node) Scrape(ctx context.Context) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", n.Admin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("node%d /metrics: %w", n.Index, err)
	}
	out := Metrics{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			key := name
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[strings.Replace(key, name, name+"_count", 1)] = float64(m.GetHistogram().GetSampleCount())
				out[strings.Replace(key, name, name+"_sum", 1)] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out, nil
}

// faultSignals are the series that show a fault, best first: a failed
// backend call, a retry, the breaker, the replication lag, a corrupt
// object, a shed request, a restart.
var faultSignals = []string{
	"cairn_backend_operations_total", "cairn_backend_retries_total", "cairn_backend_breaker_transitions_total",
	"cairn_backend_budget_rejections_total", "cairn_replication_lag_seconds", "cairn_backend_operation_duration_seconds_sum",
	"cairn_reconcile_actions_total", "cairn_http_requests_total", "cairn_chaos_injected_total", "process_start_time_seconds",
}

// Moved names the fault signal that rose most between two scrapes, as
// "name{labels} +delta", or "" when none did; signals earlier in
// faultSignals win. Successful backend calls, absent objects and 2xx
// requests are not signals; in_sync decisions neither.
func Moved(before, after Metrics) string {
	best, bestDelta, bestRank := "", 0.0, len(faultSignals)
	for k, v := range after {
		d := v - before[k]
		// A fault raises a counter, the lag, a start time: a fall is not one.
		if d <= 0 || strings.Contains(k, "outcome=ok") || strings.Contains(k, "outcome=not_found") ||
			strings.Contains(k, "outcome=precondition_failed") || strings.Contains(k, "action=in_sync") ||
			(strings.HasPrefix(k, "cairn_http_requests_total") && !strings.Contains(k, "code=5") && !strings.Contains(k, "code=429")) {
			continue
		}
		rank := -1
		for i, s := range faultSignals {
			if strings.HasPrefix(k, s+"{") || k == s {
				rank = i
				break
			}
		}
		if rank < 0 {
			continue
		}
		if rank < bestRank || (rank == bestRank && abs(d) > abs(bestDelta)) {
			best, bestDelta, bestRank = k, d, rank
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("%s %+g", best, bestDelta)
}

// only keeps the series of m whose name starts with prefix.
func only(m Metrics, prefix string) Metrics {
	out := Metrics{}
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// Reconcile runs a round for the demo tenant on every backend of the node
// and waits for it.
func (n *Node) Reconcile(ctx context.Context) ([]api.RoundResult, error) {
	var run api.ReconcileRun
	if err := n.adminDo(ctx, "POST", "/v1/admin/reconcile/run?wait=1&tenant="+tenant, &run); err != nil {
		return nil, fmt.Errorf("node%d reconcile: %w", n.Index, err)
	}
	return run.Rounds, nil
}

// Status is the node's reconcile status.
func (n *Node) Status(ctx context.Context) (api.ReconcileStatus, error) {
	var st api.ReconcileStatus
	err := n.adminDo(ctx, "GET", "/v1/admin/reconcile", &st)
	return st, err
}

// traceKey carries a request's trace id in its context.
type traceKey struct{}

// newTraceID returns a random W3C trace id.
func newTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// traceparent sends the trace id in the request's context as a W3C
// traceparent header, so the node's span for the request joins a trace the
// harness named and the report can cite it.
type traceparent struct{ next http.RoundTripper }

func (t traceparent) RoundTrip(r *http.Request) (*http.Response, error) {
	if id, ok := r.Context().Value(traceKey{}).(string); ok {
		var sid [8]byte
		_, _ = rand.Read(sid[:])
		r = r.Clone(r.Context())
		r.Header.Set("traceparent", "00-"+id+"-"+hex.EncodeToString(sid[:])+"-01")
	}
	return t.next.RoundTrip(r)
}

// span is what the harness reads of a node's json trace file.
type span struct {
	TraceID string    `json:"trace_id"`
	Status  string    `json:"status"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
}

// Traces reads the node's trace file: trace id → its spans. A line the
// node was writing when it was killed is skipped.
func (n *Node) Traces() map[string][]span {
	out := map[string][]span{}
	f, err := os.Open(n.TraceFile)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var s span
		if json.Unmarshal(sc.Bytes(), &s) == nil && s.TraceID != "" {
			out[s.TraceID] = append(out[s.TraceID], s)
		}
	}
	return out
}
