package node

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnstore/cairn/api/chaosapi"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/chaos"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// chaosNode starts a node replicating to one mem backend "b", with the
// simulator on when ch is not nil; adminTok "" configures no admin token.
func chaosNode(t *testing.T, ch *Chaos, withAdmin bool) (replNode, *mem.Mem, string, *proctest.SyncBuffer) {
	t.Helper()
	tok, sum, _ := server.NewToken()
	adminTok, adminSum, _ := server.NewToken()
	logs := &proctest.SyncBuffer{}
	cfg := testConfig(t)
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	cfg.Auth = server.Auth{Tenants: map[string][][32]byte{"acme": {sum}}}
	if withAdmin {
		cfg.Auth.Admin = [][32]byte{adminSum}
	}
	m := mem.New("b")
	cfg.Replication = Replication{Backends: []BackendSpec{{Name: "b", Backend: m}},
		Resilience: resilience.Config{MaxAttempts: 1}}
	cfg.Chaos = ch
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return replNode{n, tok}, m, adminTok, logs
}

// adminDo sends an admin request with token (none if empty) and returns
// the status and body.
func adminDo(t *testing.T, n replNode, method, path, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.AdminAddr()+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	code, _, b := send(t, http.DefaultClient, req)
	return code, b
}

// apiError decodes {"error":{"code","message","request_id"}}.
func apiError(t *testing.T, body string) (code, msg string) {
	t.Helper()
	var e struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" || e.Error.RequestID == "" {
		t.Fatalf("not an error body: %q (%v)", body, err)
	}
	return e.Error.Code, e.Error.Message
}

func TestChaosRoutesOffByDefault(t *testing.T) {
	n, _, adminTok, _ := chaosNode(t, nil, true)
	for _, m := range []string{"GET /v1/admin/chaos", "PUT /v1/admin/chaos/b", "DELETE /v1/admin/chaos/b"} {
		method, path, _ := strings.Cut(m, " ")
		if code, body := adminDo(t, n, method, path, adminTok, `{"fail_before":1}`); code != 404 {
			t.Errorf("%s without --enable-chaos: %d %s, want 404", m, code, body)
		}
	}
}

func TestChaosAdminAuth(t *testing.T) {
	n, _, adminTok, _ := chaosNode(t, &Chaos{Seed: 1}, true)
	for _, tok := range []string{"", "cairn_wrong", "x" + adminTok} {
		code, body := adminDo(t, n, "PUT", "/v1/admin/chaos/b", tok, `{"fail_before":1}`)
		if c, _ := apiError(t, body); code != 401 || c != "unauthorized" {
			t.Errorf("PUT with token %q: %d %s, want 401 unauthorized", tok, code, body)
		}
	}
	// A node without an admin token cannot be put under chaos over HTTP,
	// even on loopback where the other admin routes are open.
	bare, _, _, _ := chaosNode(t, &Chaos{Seed: 1}, false)
	code, body := adminDo(t, bare, "GET", "/v1/admin/chaos", "", "")
	if c, msg := apiError(t, body); code != 403 || c != "forbidden" || !strings.Contains(msg, "--admin-token-sha256") {
		t.Errorf("GET on a node without an admin token: %d %s, want 403 naming --admin-token-sha256", code, body)
	}
}

func TestChaosAdminBadInput(t *testing.T) {
	n, _, adminTok, _ := chaosNode(t, &Chaos{Seed: 1}, true)
	for _, c := range []struct {
		path, body string
		status     int
		msg        string
	}{
		{"/v1/admin/chaos/b", `{"fail_before":2}`, 400, "fail_before:"},
		{"/v1/admin/chaos/b", `{"fail_befor":0.5}`, 400, "fail_befor: unknown field"},
		{"/v1/admin/chaos/b", `{"latency":{"p":0.5}}`, 400, "latency.mean_ms:"},
		{"/v1/admin/chaos/b", `{"partition":"maybe"}`, 400, "partition:"},
		{"/v1/admin/chaos/b", `{"throttle":true}`, 400, "throttle:"},
		{"/v1/admin/chaos/nope", `{}`, 404, `no backend "nope" (configured: b)`},
	} {
		code, body := adminDo(t, n, "PUT", c.path, adminTok, c.body)
		if _, msg := apiError(t, body); code != c.status || !strings.HasPrefix(msg, c.msg) {
			t.Errorf("PUT %s %s: %d %s, want %d with a message starting %q", c.path, c.body, code, body, c.status, c.msg)
		}
	}
}

// TestChaosAdminInjects: a profile set over HTTP fails the reconciler's
// uploads, the faults show in the status, the metric, the log and the
// schedule, and DELETE heals.
func TestChaosAdminInjects(t *testing.T) {
	n, m, adminTok, logs := chaosNode(t, &Chaos{Seed: 7}, true)
	code, body := adminDo(t, n, "PUT", "/v1/admin/chaos/b", adminTok, `{"fail_before":1,"ops":["put"]}`)
	var set chaosapi.Profile
	if json.Unmarshal([]byte(body), &set); code != 200 || set.Backend != "b" || set.Profile.FailBefore != 1 {
		t.Fatalf("PUT profile: %d %s", code, body)
	}
	if code, _ := n.do(t, "PUT", "k1", `{"v":1}`); code != 201 {
		t.Fatalf("PUT k1: %d", code)
	}
	// Every upload fails before reaching the backend.
	for _, r := range n.run(t, "").Rounds {
		if r.Error == "" {
			t.Fatalf("a round succeeded with every upload failing: %+v", r)
		}
	}
	if _, err := m.Stat(context.Background(), "acme", "k1"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("k1 reached the backend through fail_before: %v", err)
	}

	code, body = adminDo(t, n, "GET", "/v1/admin/chaos", adminTok, "")
	var st chaosapi.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("GET status: %d %s", code, body)
	}
	if b := st.Backends["b"]; st.Seed != 7 || b.Profile.FailBefore != 1 || b.Injected["fail_before"] < 1 {
		t.Fatalf("status %s", body)
	}
	_, metrics := adminDo(t, n, "GET", "/metrics", "", "")
	if !strings.Contains(metrics, `cairn_chaos_injected_total{backend="b",fault="fail_before"}`) ||
		strings.Contains(metrics, `cairn_chaos_injected_total{backend="b",fault="fail_before"} 0`) {
		t.Errorf("metrics lack a moved cairn_chaos_injected_total for fail_before")
	}
	if !strings.Contains(logs.String(), `"msg":"chaos: injected fault"`) || !strings.Contains(logs.String(), `"fault":"fail_before"`) {
		t.Errorf("no injection log line in:\n%s", logs)
	}
	code, body = adminDo(t, n, "GET", "/v1/admin/chaos/b/schedule", adminTok, "")
	var sch chaosapi.Schedule
	if json.Unmarshal([]byte(body), &sch); code != 200 || len(sch.Injections) == 0 || sch.Injections[0].Key != "k1" {
		t.Fatalf("schedule: %d %s", code, body)
	}

	if code, body := adminDo(t, n, "DELETE", "/v1/admin/chaos/b", adminTok, ""); code != 200 {
		t.Fatalf("DELETE (heal): %d %s", code, body)
	}
	for _, r := range n.run(t, "").Rounds {
		if r.Error != "" {
			t.Fatalf("round after the heal: %+v", r)
		}
	}
	if _, err := m.Stat(context.Background(), "acme", "k1"); err != nil {
		t.Fatalf("k1 not on the backend after the heal: %v", err)
	}
}

func TestChaosBadFailpoints(t *testing.T) {
	cfg := testConfig(t)
	cfg.Chaos = &Chaos{Failpoints: "store.commit=kill"}
	_, err := Start(context.Background(), cfg)
	if !errors.Is(err, fault.ErrConfig) || !strings.Contains(err.Error(), "CAIRN_FAILPOINTS") {
		t.Fatalf("Start with a bad failpoint: %v", err)
	}
}

// TestChaosFaultSpanEvent: a fault injected in a reconciliation round is an
// event "chaos.fault" on the round's span (the round reads the tenant's
// digest layout, get_blob, and lists only when the digests differ).
func TestChaosFaultSpanEvent(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tok, sum, _ := server.NewToken()
	cfg := testConfig(t)
	cfg.Auth = server.Auth{Tenants: map[string][][32]byte{"acme": {sum}}}
	cfg.Replication = Replication{Backends: []BackendSpec{{Name: "b", Backend: mem.New("b")}},
		Resilience: resilience.Config{MaxAttempts: 1}}
	cfg.Trace = telemetry.Config{SpanExporter: spans, NoGlobal: true, SampleRatio: 1}
	cfg.Chaos = &Chaos{Seed: 3}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	if err := n.chaos.backends["b"].SetProfile(chaos.Profile{FailBefore: 1, Ops: []string{"list", "get_blob"}}); err != nil {
		t.Fatal(err)
	}
	rn := replNode{n, tok}
	rn.run(t, "")
	if err := n.tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range spans.GetSpans() {
		if s.Name != "reconcile.round" {
			continue
		}
		for _, ev := range s.Events {
			if ev.Name != "chaos.fault" {
				continue
			}
			for _, a := range ev.Attributes {
				if a.Key == "chaos.fault" && a.Value.AsString() == "fail_before" {
					return
				}
			}
		}
	}
	t.Fatalf("no chaos.fault event with fail_before on a reconcile.round span among %d spans", len(spans.GetSpans()))
}

// TestAdminRequestTraced: an admin request is a server span, continuing the
// client's traceparent, and the round a waited run starts is its child, as
// docs/observability.md says.
func TestAdminRequestTraced(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	n := startReplNodeWith(t, func(cfg *Config) {
		cfg.Trace = telemetry.Config{SpanExporter: spans, NoGlobal: true, SampleRatio: 1}
	}, BackendSpec{Name: "b", Backend: mem.New("b")})
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, err := http.NewRequest("POST", "http://"+n.AdminAddr()+"/v1/admin/reconcile/run?wait=1&tenant=acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("run: %s", resp.Status)
	}
	if err := n.tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var server, round bool
	for _, s := range spans.GetSpans() {
		if s.SpanContext.TraceID().String() != trace {
			continue
		}
		switch s.Name {
		case "POST /v1/admin/reconcile/run":
			server = true
		case "reconcile.round":
			round = true
		}
	}
	if !server || !round {
		t.Fatalf("in the client's trace: server span %v, reconcile.round %v; want both (%d spans in all)", server, round, len(spans.GetSpans()))
	}
}
