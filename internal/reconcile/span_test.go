package reconcile

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/telemetry"
)

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// TestRoundSpans: a round is one span with its counts; each decision but
// InSync is a child span, and one InSync in SampleInSync.
func TestRoundSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(bg)
	a := openStore(t, "a")
	e := newEngine(t, a, mem.New("b"), func(c *Config) { c.Tracer, c.SampleInSync = tp.Tracer("test"), 3 })
	for i := range 10 {
		put(t, a, fmt.Sprintf("k%d", i), `{}`)
	}
	check := func(wantDecisions int, action string) {
		t.Helper()
		spans := exp.GetSpans()
		exp.Reset()
		var round *tracetest.SpanStub
		decisions := 0
		for i, s := range spans {
			switch s.Name {
			case spanRound:
				round = &spans[i]
			case spanDecision:
				decisions++
			}
		}
		if round == nil || len(spans) != 1+wantDecisions || decisions != wantDecisions {
			t.Fatalf("%d spans, %d decisions, round %v; want 1 round and %d decisions", len(spans), decisions, round != nil, wantDecisions)
		}
		ra := attrs(*round)
		if ra[attrTenant].AsString() != tenant || ra[attrBackend].AsString() != "b" || ra[attrScanned].AsInt64() != 10 {
			t.Fatalf("round span attributes %v", ra)
		}
		if round.Parent.IsValid() {
			t.Fatal("a pass's round span has a parent")
		}
		for _, s := range spans {
			if s.Name != spanDecision {
				continue
			}
			da := attrs(s)
			if s.Parent.SpanID() != round.SpanContext.SpanID() || da[attrAction].AsString() != action || da[attrKey].AsString() == "" {
				t.Fatalf("decision span %s: parent %v (round %v), attributes %v", s.Name, s.Parent.SpanID(), round.SpanContext.SpanID(), da)
			}
		}
	}
	runRound(t, e)
	check(10, "upload") // every upload
	st := runRound(t, e)
	if st.Actions[InSync] != 10 {
		t.Fatalf("second round %+v", st)
	}
	check(4, "in_sync") // the 1st, 4th, 7th and 10th
}

// TestRoundMetrics: the engine feeds telemetry.Metrics: keys, actions,
// bytes and rounds.
func TestRoundMetrics(t *testing.T) {
	m := telemetry.NewMetrics("test", 10)
	a := openStore(t, "a")
	e := newEngine(t, a, mem.New("b"), func(c *Config) { c.Observer = m; c.CheckpointEvery = 3 })
	for i := range 10 {
		put(t, a, fmt.Sprintf("k%d", i), `{"n":1}`)
	}
	runRound(t, e)
	runRound(t, e)
	want := `
# HELP cairn_reconcile_actions_total Reconciliation decisions applied, by backend and action (in_sync, update_base, fetch_remote, upload, download, conflict).
# TYPE cairn_reconcile_actions_total counter
cairn_reconcile_actions_total{action="in_sync",backend="b"} 10
cairn_reconcile_actions_total{action="upload",backend="b"} 10
# HELP cairn_reconcile_bytes_total Document bytes the reconciler moved, by backend and direction (up: to the backend, down: to the store).
# TYPE cairn_reconcile_bytes_total counter
cairn_reconcile_bytes_total{backend="b",direction="up"} 70
# HELP cairn_reconcile_keys_total Keys examined by the reconciler's merge-join (its progress).
# TYPE cairn_reconcile_keys_total counter
cairn_reconcile_keys_total{backend="b"} 20
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"cairn_reconcile_actions_total", "cairn_reconcile_bytes_total", "cairn_reconcile_keys_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.Registry(), "cairn_reconcile_round_duration_seconds"); n != 1 {
		t.Fatalf("round duration series: %d", n)
	}
}

// TestRunRoundSpanHasCallersParent: a round asked for by RunRound (the
// admin endpoint) is a child of the caller's span.
func TestRunRoundSpanHasCallersParent(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(bg)
	a := openStore(t, "a")
	e := newEngine(t, a, mem.New("b"), func(c *Config) { c.Tracer = tp.Tracer("test") })
	runEngine(t, e)
	put(t, a, "x", `{}`)
	ctx, parent := tp.Tracer("caller").Start(bg, "admin")
	if _, err := e.RunRound(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	parent.End()
	for _, s := range exp.GetSpans() {
		if s.Name == spanRound {
			if s.Parent.SpanID() != parent.SpanContext().SpanID() || s.SpanContext.TraceID() != parent.SpanContext().TraceID() {
				t.Fatalf("round span parent %v, want the caller's %v", s.Parent.SpanID(), parent.SpanContext().SpanID())
			}
			return
		}
	}
	t.Fatal("no round span")
}
