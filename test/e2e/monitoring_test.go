package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

const (
	alertsFile    = "../../deploy/prometheus/cairn-alerts.yml"
	alertTests    = "../../deploy/prometheus/cairn-alerts.test.yml"
	dashboardFile = "../../deploy/grafana/cairn.json"
)

// promtool is $CAIRN_PROMTOOL_BIN (scripts/test.sh sets it from
// scripts/deploy-tools.sh), else promtool on PATH, else the test skips.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CAIRN_PROMTOOL_BIN"); p != "" {
		return p
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (scripts/deploy-tools.sh installs it; CAIRN_PROMTOOL_BIN names it)")
	}
	return p
}

// TestAlertRulesPromtool: the rules load (promtool check rules) and every
// alert's unit tests pass (promtool test rules); every alert has tests.
func TestAlertRulesPromtool(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", alertsFile}, {"test", "rules", alertTests}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, alertTests, &tests)
	fired := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertRuleTest {
			fired[at.Alertname] = fired[at.Alertname] || len(at.ExpAlerts) > 0
		}
	}
	for _, r := range alertRules(t) {
		if !fired[r.Alert] {
			t.Errorf("alert %s has no unit test in which it fires", r.Alert)
		}
	}
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var file struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, alertsFile, &file)
	var rules []alertRule
	for _, g := range file.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("no rules in %s", alertsFile)
	}
	return rules
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// runbookAnchors are the anchors GitHub gives docs/runbook.md's "## "
// headings, and those of the failure modes (the numbered entries and the
// drill check).
func runbookAnchors(t *testing.T) (all, modes []string) {
	t.Helper()
	b, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^##+ (.+)$`).FindAllStringSubmatch(string(b), -1) {
		slug := strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				return r
			case r == ' ':
				return '-'
			}
			return -1
		}, strings.ToLower(m[1]))
		all = append(all, slug)
		if regexp.MustCompile(`^\d+\. `).MatchString(m[1]) || strings.Contains(m[1], "drill") {
			modes = append(modes, slug)
		}
	}
	return all, modes
}

// TestAlertsLinkRunbook: every alert links an entry of docs/runbook.md that
// exists, and every failure mode there is linked by an alert.
func TestAlertsLinkRunbook(t *testing.T) {
	all, modes := runbookAnchors(t)
	if len(modes) < 17 {
		t.Fatalf("found %d failure modes in the runbook, want its numbered entries", len(modes))
	}
	const base = "https://github.com/cairnstore/cairn/blob/main/docs/runbook.md#"
	linked := map[string]bool{}
	for _, r := range alertRules(t) {
		if r.Annotations["runbook_url"] == "" {
			t.Errorf("alert %s has no runbook_url", r.Alert)
		}
		for _, key := range []string{"runbook_url", "runbook_also"} {
			url := r.Annotations[key]
			if url == "" {
				continue
			}
			anchor, ok := strings.CutPrefix(url, base)
			if !ok || !slices.Contains(all, anchor) {
				t.Errorf("alert %s: %s %s is not an entry of docs/runbook.md", r.Alert, key, url)
			}
			linked[anchor] = true
		}
	}
	for _, m := range modes {
		if !linked[m] {
			t.Errorf("runbook entry #%s has no alert", m)
		}
	}
}

// metricNames are the metric names a PromQL text uses: cairn's and the
// Go and process collectors' (their prefixes), and Prometheus's own up.
var metricNames = regexp.MustCompile(`\b(?:cairn|go|process)_[a-z0-9_]+\b|\bup\b`)

// TestMonitoringMetricsExist: every metric an alert or a dashboard panel
// queries is in a scrape of the real binary. The node runs with a backend
// and the fault simulator, and is driven through what makes each family
// appear: a conflict with a second node, a failing backend that opens the
// breaker. up is made by Prometheus, not the node.
func TestMonitoringMetricsExist(t *testing.T) {
	used := map[string][]string{}
	var queries []string
	for _, r := range alertRules(t) {
		queries = append(queries, r.Expr)
		for _, n := range metricNames.FindAllString(r.Expr, -1) {
			used[n] = append(used[n], "alert "+r.Alert)
		}
	}
	dash, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`"(?:expr|query|definition)": "((?:[^"\\]|\\.)*)"`).FindAllSubmatch(dash, -1) {
		queries = append(queries, strings.ReplaceAll(string(m[1]), `\"`, `"`))
		for _, n := range metricNames.FindAllString(string(m[1]), -1) {
			used[n] = append(used[n], "dashboard")
		}
	}
	delete(used, "up")
	if len(used) < 20 {
		t.Fatalf("found %d metric names in the alerts and the dashboard: the pattern is wrong", len(used))
	}

	fams := scrapeBusyNode(t)
	for _, q := range queries {
		checkSelectorLabels(t, q, fams)
	}
	for name, where := range used {
		if _, ok := fams[name]; ok {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if f, ok := fams[base]; ok && base != name && f.GetType() == dto.MetricType_HISTOGRAM {
			continue
		}
		t.Errorf("%s (%s) is not in a scrape of cairn", name, strings.Join(slices.Compact(where), ", "))
	}
}

// selector is a metric name and the matchers in braces after it.
var selector = regexp.MustCompile(`\b((?:cairn|go|process)_[a-z0-9_]+)\{([^}]*)\}`)

// checkSelectorLabels fails for a matcher on a label the scraped family
// does not have: such a selector matches nothing, and its alert never
// fires. job and instance are Prometheus's, added at scrape.
func checkSelectorLabels(t *testing.T, query string, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for _, m := range selector.FindAllStringSubmatch(query, -1) {
		name := m[1]
		f, ok := fams[name]
		if !ok {
			base := strings.TrimSuffix(name, "_bucket")
			if f, ok = fams[base]; !ok {
				continue // reported by the name check
			}
		}
		have := map[string]bool{"job": true, "instance": true, "le": true}
		for _, s := range f.GetMetric() {
			for _, lp := range s.GetLabel() {
				have[lp.GetName()] = true
			}
		}
		for _, lm := range regexp.MustCompile(`([a-z_]+)\s*(?:=~|!~|!=|=)`).FindAllStringSubmatch(m[2], -1) {
			if !have[lm[1]] {
				t.Errorf("%s{%s}: %s has no label %q", name, m[2], name, lm[1])
			}
		}
	}
}

// scrapeBusyNode runs two nodes over one fs backend, makes a conflict
// between them and then a backend failure on the second, and returns the
// second's metric families, with those only the first has (the conflict's
// count, when the first found it).
func scrapeBusyNode(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	be := "local=fs:" + t.TempDir()
	a := startNode(t, t.TempDir(), "--backend", be, "--reconcile-interval", "0")
	const adminToken = "cairn_monitoring_admin"
	sum := sha256.Sum256([]byte(adminToken))
	b := startNode(t, t.TempDir(), "--backend", be, "--reconcile-interval", "0", "--enable-chaos", "--resp-listen", "127.0.0.1:0", // the RESP front's families
		"--admin-token-sha256", hex.EncodeToString(sum[:])) // the fault simulator's routes need one
	adminA, adminB := adminAddr(t, a), adminAddr(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, p := range []*proc{a, b} {
		if resp, body, err := p.do(ctx, "PUT", "both", `{"by":"`+p.URL+`"}`); err != nil || resp.StatusCode != 201 {
			t.Fatalf("PUT: %v %s", err, body)
		}
	}
	admin := func(addr, method, path, body string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	scrape := func(addr string) map[string]*dto.MetricFamily {
		code, raw := admin(addr, "GET", "/metrics", "")
		if code != 200 {
			t.Fatalf("GET /metrics: %d", code)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(raw))
		if err != nil {
			t.Fatalf("parse /metrics: %v", err)
		}
		return fams
	}
	// Which node counts the conflict depends on which uploader reached the
	// backend first: the other one's round finds the concurrent version.
	// Rounds on both, until one of them has counted it.
	var counted map[string]*dto.MetricFamily
	for pass := 0; counted == nil; pass++ {
		if pass == 3 {
			t.Fatal("no conflict counted after both nodes wrote the same key and reconciled three times")
		}
		for _, addr := range []string{adminA, adminB} {
			if code, body := admin(addr, "POST", "/v1/admin/reconcile/run?wait=1", ""); code != 200 {
				t.Fatalf("reconcile run on %s: %d %s", addr, code, body)
			}
			if fams := scrape(addr); fams["cairn_reconcile_conflicts_total"] != nil {
				counted = fams
			}
		}
	}
	// A node's feed lag appears once it has applied a peer's feed object:
	// each node wrote, so each publishes, and each finds the other within
	// a few polls.
	var fed map[string]*dto.MetricFamily
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, addr := range []string{adminA, adminB} {
			if fams := scrape(addr); fed == nil && fams["cairn_feed_lag_seconds"] != nil {
				fed = fams
			}
		}
		if fed != nil {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("no node applied its peer's change feed within the test's deadline")
		}
	}
	if code, body := admin(adminB, "PUT", "/v1/admin/chaos/local", `{"fail_before":1}`); code != 200 {
		t.Fatalf("chaos profile: %d %s", code, body)
	}
	for range 20 {
		if _, ok := scrape(adminB)["cairn_backend_breaker_transitions_total"]; ok {
			break
		}
		admin(adminB, "POST", "/v1/admin/reconcile/run?wait=1", "")
	}
	fams := scrape(adminB)
	for _, other := range []map[string]*dto.MetricFamily{counted, fed} { // counted or fed on the first node
		for name, f := range other {
			if fams[name] == nil {
				fams[name] = f
			}
		}
	}
	return fams
}
