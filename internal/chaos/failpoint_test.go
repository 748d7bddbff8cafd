package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
)

func armed(t *testing.T, spec string, seed uint64) (*Failpoints, *int) {
	t.Helper()
	f, err := ParseFailpoints(spec, seed, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("ParseFailpoints(%q): %v", spec, err)
	}
	kills := new(int)
	f.kill = func() { *kills++ }
	return f, kills
}

func TestFailpointKillAt(t *testing.T) {
	f, kills := armed(t, "store.commit.after-sync=kill@3, reconcile.apply.before=kill", 1)
	if got, want := f.String(), "reconcile.apply.before=kill@1,store.commit.after-sync=kill@3"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	for i := 1; i <= 5; i++ {
		f.Hit(StoreCommitAfterSync)
		f.Hit(StoreCommitBeforeSync) // not armed
		want := 0
		if i >= 3 {
			want = 1
		}
		if *kills != want {
			t.Fatalf("after hit %d: %d kills, want %d", i, *kills, want)
		}
	}
	f.Hit(ReconcileApplyBefore)
	if *kills != 2 {
		t.Fatalf("kill (no count) did not fire on the first hit")
	}
}

// TestFailpointKillProbability: a seed replays the hit that fires.
func TestFailpointKillProbability(t *testing.T) {
	firstKill := func(seed uint64) int {
		f, kills := armed(t, "store.commit.before-sync=kill%0.05", seed)
		for i := 1; i <= 10000; i++ {
			f.Hit(StoreCommitBeforeSync)
			if *kills > 0 {
				return i
			}
		}
		return 0
	}
	a, b := firstKill(11), firstKill(11)
	if a == 0 || a != b {
		t.Fatalf("seed 11: first kill at hit %d, then at %d", a, b)
	}
	differ := false
	for seed := uint64(12); seed < 20; seed++ {
		differ = differ || firstKill(seed) != a
	}
	if !differ {
		t.Fatal("eight other seeds all killed at the same hit")
	}
}

func TestFailpointConcurrentHitsFireOnce(t *testing.T) {
	f, _ := armed(t, "store.commit.after-sync=kill@10", 1)
	var mu sync.Mutex
	kills := 0
	f.kill = func() { mu.Lock(); kills++; mu.Unlock() }
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				f.Hit(StoreCommitAfterSync)
			}
		})
	}
	wg.Wait()
	if kills != 1 {
		t.Fatalf("%d kills, want 1", kills)
	}
}

func TestParseFailpointsErrors(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"store.commit=kill@1", "unknown failpoint"},
		{"store.commit.after-sync", "want name=kill@N"},
		{"store.commit.after-sync=kill@0", "kill@N wants"},
		{"store.commit.after-sync=kill@x", "kill@N wants"},
		{"store.commit.after-sync=kill%1.5", "kill%P wants"},
		{"store.commit.after-sync=panic", "unknown action"},
		{"store.commit.after-sync=kill,store.commit.after-sync=kill@2", "armed twice"},
	} {
		_, err := ParseFailpoints(c.spec, 1, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseFailpoints(%q) = %v, want an error containing %q", c.spec, err, c.want)
		}
	}
	f, err := ParseFailpoints(" ", 1, nil)
	if err != nil || f.Armed() {
		t.Fatalf("empty spec: %v, armed %v", err, f.Armed())
	}
}

type countFaults struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countFaults) ChaosInjected(backend, fault string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[backend+"/"+fault]++
}

// TestReport: an injection is a log line, a metric and a span event.
func TestReport(t *testing.T) {
	var logs bytes.Buffer
	counter := &countFaults{n: map[string]int{}}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())

	b := Wrap(mem.New("m1"), 3, Report{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Counter: counter})
	b.SetProfile(Profile{FailBefore: 1})
	ctx, span := tp.Tracer("test").Start(context.Background(), "round")
	b.Stat(ctx, tenant, "k1")
	span.End()

	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	for k, want := range map[string]any{"msg": "chaos: injected fault", "level": "WARN", "backend": "m1",
		"op": backend.OpStat, "fault": "fail_before", "tenant": tenant, "key": "k1"} {
		if line[k] != want {
			t.Errorf("log %s = %v, want %v", k, line[k], want)
		}
	}
	if counter.n["m1/fail_before"] != 1 {
		t.Errorf("counter = %v", counter.n)
	}
	ended := spans.Ended()
	if len(ended) != 1 || len(ended[0].Events()) != 1 || ended[0].Events()[0].Name != "chaos.fault" {
		t.Fatalf("span events: %+v", ended)
	}
	attrs := map[string]string{}
	for _, a := range ended[0].Events()[0].Attributes {
		attrs[string(a.Key)] = a.Value.AsString()
	}
	if attrs["chaos.fault"] != "fail_before" || attrs["chaos.key"] != "k1" || attrs["chaos.backend"] != "m1" {
		t.Fatalf("event attributes %v", attrs)
	}
}
