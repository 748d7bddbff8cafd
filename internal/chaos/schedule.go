package chaos

import (
	"cmp"
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Injection is one injected fault: the entry of a schedule.
type Injection struct {
	Backend string `json:"backend"`
	Op      string `json:"op"` // a backend.Op* name
	Tenant  string `json:"tenant"`
	Key     string `json:"key,omitempty"` // for a listing, the page's cursor
	// N is the call's ordinal among the calls of Op on (Tenant, Key) since
	// the profile was set: with the seed, it is what the draw depends on.
	N     uint64 `json:"n"`
	Fault string `json:"fault"` // a fault name, as in Profile and the metric
	// Detail is deterministic too: the delay, the damaged byte, the
	// partition mode.
	Detail string `json:"detail,omitempty"`
}

// Faults are the names an Injection's Fault takes, the label values of
// cairn_chaos_injected_total.
var Faults = []string{
	"partition", "throttle", "fail_before", "latency", "fail_after",
	"corrupt_flip", "corrupt_truncate", "stale_list",
}

// Observer hears of every injected fault, on the goroutine of the call,
// with the call's context (so a log line and a span event land on the
// request or round that suffered it). It must not block.
type Observer interface {
	Injected(ctx context.Context, in Injection, note string)
}

// injectNote records an injection in the schedule and tells the observer;
// note (timing-dependent facts) goes to the observer only.
func (b *Backend) injectNote(ctx context.Context, c *call, f, detail, note string) {
	in := Injection{Backend: b.name, Op: c.op, Tenant: c.tenant, Key: c.key, N: c.n, Fault: f, Detail: detail}
	b.mu.Lock()
	b.injected[f]++
	if len(b.log) < maxLog {
		b.log = append(b.log, in)
	} else {
		b.dropped++
	}
	b.mu.Unlock()
	if b.obs != nil {
		b.obs.Injected(ctx, in, note)
	}
}

func (b *Backend) inject(ctx context.Context, c *call, f, detail string) {
	b.injectNote(ctx, c, f, detail, "")
}

// Schedule returns the faults injected so far (at most 100 000 are kept;
// see Dropped), sorted by operation, tenant, key, ordinal and fault. The
// order does not depend on how concurrent calls interleaved: two runs
// with the same seed that make the same calls per key have equal
// schedules.
func (b *Backend) Schedule() []Injection {
	b.mu.Lock()
	s := slices.Clone(b.log)
	b.mu.Unlock()
	slices.SortFunc(s, func(x, y Injection) int {
		return cmp.Or(strings.Compare(x.Op, y.Op), strings.Compare(x.Tenant, y.Tenant),
			strings.Compare(x.Key, y.Key), cmp.Compare(x.N, y.N), strings.Compare(x.Fault, y.Fault))
	})
	return s
}

// Dropped is the number of injections not kept in the schedule.
func (b *Backend) Dropped() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// Injected returns how many faults of each kind were injected over the
// wrapper's life (SetProfile does not reset it).
func (b *Backend) Injected() map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.injected)
}

// Counter is the metric an injection increments;
// *telemetry.Metrics implements it (cairn_chaos_injected_total).
type Counter interface {
	ChaosInjected(backend, fault string)
}

// Report is the Observer a node uses: a warning log line
// "chaos: injected fault" (with backend, op, fault, tenant, key), the
// counter, and a "chaos.fault" event on the span of the call's context.
// Either field may be nil.
type Report struct {
	Log     *slog.Logger
	Counter Counter
}

// Injected implements Observer.
func (r Report) Injected(ctx context.Context, in Injection, note string) {
	if r.Counter != nil {
		r.Counter.ChaosInjected(in.Backend, in.Fault)
	}
	if r.Log != nil {
		attrs := []any{"backend", in.Backend, "op", in.Op, "fault", in.Fault, "tenant", in.Tenant, "key", in.Key, "n", in.N}
		if in.Detail != "" {
			attrs = append(attrs, "detail", in.Detail)
		}
		if note != "" {
			attrs = append(attrs, "note", note)
		}
		r.Log.WarnContext(ctx, "chaos: injected fault", attrs...)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("chaos.fault", trace.WithAttributes(
			attribute.String("chaos.backend", in.Backend),
			attribute.String("chaos.op", in.Op),
			attribute.String("chaos.fault", in.Fault),
			attribute.String("chaos.key", in.Key),
			attribute.String("chaos.detail", in.Detail),
		))
	}
}

// draw is the random number of one decision: a hash of the seed, the
// operation, the tenant and key, the call's ordinal and the fault. It is
// a pure function, so the schedule does not depend on which goroutine
// asked first (a shared PRNG would hand out its numbers in arrival order).
func draw(seed uint64, op, tenant, key string, n uint64, f string) uint64 {
	h := uint64(14695981039346656037) // FNV-1a over the names, NUL-separated
	for _, s := range [...]string{op, tenant, key, f} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		h ^= 0
		h *= 1099511628211
	}
	return mix(seed ^ mix(h^mix(n)))
}

// mix is splitmix64's finalizer: every input bit affects every output bit.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit maps x to [0, 1) with 53 bits.
func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }
