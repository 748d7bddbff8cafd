package chaos

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/backendtest"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

const tenant = "t1"

// recorder is an Observer that keeps what it hears.
type recorder struct {
	mu  sync.Mutex
	got []Injection
}

func (r *recorder) Injected(_ context.Context, in Injection, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, in)
}

func (r *recorder) faults() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var fs []string
	for _, in := range r.got {
		fs = append(fs, in.Fault)
	}
	return fs
}

func version(t testing.TB, body string) doc.Version {
	t.Helper()
	return doc.Derive(nil, 1, doc.Timestamp(1), []byte(body), false)
}

func wrapped(t testing.TB, p Profile) (*Backend, *mem.Mem, *recorder) {
	t.Helper()
	m := mem.New("m1")
	rec := &recorder{}
	b := Wrap(m, 42, rec)
	if err := b.SetProfile(p); err != nil {
		t.Fatal(err)
	}
	return b, m, rec
}

func putDirect(t testing.TB, be backend.Backend, key, body string) string {
	t.Helper()
	etag, err := be.Put(bg, tenant, key, version(t, body), []byte(body), backend.Precondition{})
	if err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
	return etag
}

// TestConformance: without a profile the wrapper is the backend.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return Wrap(mem.New("mem"), 1, nil) })
}

func TestFailBeforeAppliesNothing(t *testing.T) {
	b, m, rec := wrapped(t, Profile{FailBefore: 1})
	body := `{"a":1}`
	_, err := b.Put(bg, tenant, "k", version(t, body), []byte(body), backend.Precondition{})
	if !errors.Is(err, fault.ErrTransient) {
		t.Fatalf("Put: %v, want transient", err)
	}
	if c := fault.ContextOf(err); c.Backend != "m1" || c.Key != "k" || c.Op != backend.OpPut {
		t.Fatalf("error context %+v", c)
	}
	if _, err := m.Stat(bg, tenant, "k"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("the backend has the object after fail_before: Stat = %v", err)
	}
	if got := rec.faults(); !reflect.DeepEqual(got, []string{"fail_before"}) {
		t.Fatalf("observer heard %v", got)
	}
}

// TestFailAfterIsApplied: the ambiguous outcome. The caller sees an error,
// and the write is there.
func TestFailAfterIsApplied(t *testing.T) {
	b, m, _ := wrapped(t, Profile{FailAfter: 1})
	body := `{"a":1}`
	v := version(t, body)
	_, err := b.Put(bg, tenant, "k", v, []byte(body), backend.Precondition{})
	if !errors.Is(err, fault.ErrTransient) {
		t.Fatalf("Put: %v, want transient", err)
	}
	o, err := m.Get(bg, tenant, "k")
	if err != nil {
		t.Fatalf("the write was not applied: %v", err)
	}
	if o.Version.ID() != v.ID() || string(o.Body) != body {
		t.Fatalf("stored %v %q, want %v %q", o.Version.ID(), o.Body, v.ID(), body)
	}
	if err := b.Delete(bg, tenant, "k", backend.Precondition{}); !errors.Is(err, fault.ErrTransient) {
		t.Fatalf("Delete: %v, want transient", err)
	}
	if _, err := m.Stat(bg, tenant, "k"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("the delete was not applied: Stat = %v", err)
	}
	// A genuine failure is not dressed up as an injected one.
	_, err = b.Put(bg, tenant, "k2", v, []byte(body), backend.Precondition{IfMatch: "nope"})
	if fault.ClassOf(err) != fault.PreconditionFailed {
		t.Fatalf("Put with a failing precondition: %v, want precondition_failed", err)
	}
}

func TestPartitionFailAndHeal(t *testing.T) {
	b, m, _ := wrapped(t, Profile{Partition: PartitionFail})
	putDirect(t, m, "k", `{}`)
	for name, call := range map[string]func() error{
		"list": func() error { _, err := b.List(bg, tenant, backend.ListOptions{}); return err },
		"get":  func() error { _, err := b.Get(bg, tenant, "k"); return err },
		"stat": func() error { _, err := b.Stat(bg, tenant, "k"); return err },
		"put": func() error {
			_, err := b.Put(bg, tenant, "k2", version(t, `{}`), []byte(`{}`), backend.Precondition{})
			return err
		},
		"delete": func() error { return b.Delete(bg, tenant, "k", backend.Precondition{}) },
	} {
		if err := call(); !errors.Is(err, fault.ErrTransient) || !strings.Contains(err.Error(), "partitioned") {
			t.Errorf("%s during a partition: %v, want a transient partition error", name, err)
		}
	}
	if _, err := m.Stat(bg, tenant, "k"); err != nil {
		t.Fatalf("the partitioned delete reached the backend: %v", err)
	}
	b.Heal()
	if _, err := b.Get(bg, tenant, "k"); err != nil {
		t.Fatalf("Get after the heal: %v", err)
	}
	if got := b.Injected()["partition"]; got != 5 {
		t.Fatalf("partition injections = %d, want 5", got)
	}
}

func TestPartitionHang(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, m, _ := wrapped(t, Profile{Partition: PartitionHang})
		putDirect(t, m, "k", `{}`)
		// A call with a deadline gives up with a transient error.
		ctx, cancel := context.WithTimeout(bg, 3*time.Second)
		defer cancel()
		start := time.Now()
		_, err := b.Get(ctx, tenant, "k")
		if !errors.Is(err, fault.ErrTransient) || time.Since(start) != 3*time.Second {
			t.Fatalf("hung Get: %v after %v, want transient after 3s", err, time.Since(start))
		}
		// A call without one waits for the heal, then runs.
		done := make(chan error)
		go func() {
			_, err := b.Get(bg, tenant, "k")
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Get returned during the partition: %v", err)
		default:
		}
		b.Heal()
		if err := <-done; err != nil {
			t.Fatalf("Get after the heal: %v", err)
		}
	})
}

func TestThrottle(t *testing.T) {
	b, _, _ := wrapped(t, Profile{Throttle: 1, RetryAfterS: 7})
	_, err := b.Stat(bg, tenant, "k")
	if !errors.Is(err, fault.ErrTransient) {
		t.Fatalf("throttled Stat: %v, want transient", err)
	}
	if d, ok := fault.RetryAfter(err); !ok || d != 7*time.Second {
		t.Fatalf("Retry-After = %v, %v; want 7s", d, ok)
	}
	b.SetProfile(Profile{Throttle: 1})
	_, err = b.Stat(bg, tenant, "k")
	if d, _ := fault.RetryAfter(err); d != fault.SlowDownDelay {
		t.Fatalf("default Retry-After = %v, want %v", d, fault.SlowDownDelay)
	}
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, m, _ := wrapped(t, Profile{Latency: Latency{P: 1, MeanMS: 100, MaxMS: 150}})
		putDirect(t, m, "k", `{}`)
		var total time.Duration
		for i := range 50 {
			start := time.Now()
			if _, err := b.Stat(bg, tenant, "k"); err != nil {
				t.Fatal(err)
			}
			d := time.Since(start)
			if d <= 0 || d > 150*time.Millisecond {
				t.Fatalf("call %d took %v, want (0, 150ms]", i, d)
			}
			total += d
		}
		// The mean of an exponential(100ms) capped at 150ms is ~78ms.
		if mean := total / 50; mean < 40*time.Millisecond || mean > 120*time.Millisecond {
			t.Fatalf("mean delay %v, want about 78ms", mean)
		}
		// A delay longer than the caller's deadline ends with the deadline.
		b.SetProfile(Profile{Latency: Latency{P: 1, MeanMS: 60_000}})
		ctx, cancel := context.WithTimeout(bg, time.Millisecond)
		defer cancel()
		if _, err := b.Stat(ctx, tenant, "k"); !errors.Is(err, fault.ErrTransient) {
			t.Fatalf("delayed past the deadline: %v, want transient", err)
		}
	})
}

func TestCorruptionIsDetected(t *testing.T) {
	for _, p := range []Profile{{CorruptFlip: 1}, {CorruptTruncate: 1}} {
		b, m, rec := wrapped(t, p)
		for i := range 20 { // many keys: the damage lands in different places
			key := fmt.Sprintf("k%02d", i)
			putDirect(t, m, key, fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("x", i*7)))
			o, err := b.Get(bg, tenant, key)
			if !errors.Is(err, fault.ErrCorruption) || o != nil {
				t.Fatalf("%+v: Get %s = %v, %v; want fault.Corruption and no object", p, key, o, err)
			}
			if c := fault.ContextOf(err); c.Backend != "m1" || c.Key != key {
				t.Fatalf("error context %+v", c)
			}
			if _, err := m.Get(bg, tenant, key); err != nil {
				t.Fatalf("the stored object was damaged: %v", err)
			}
		}
		if n := len(rec.faults()); n != 20 {
			t.Fatalf("%+v: %d injections heard, want 20", p, n)
		}
	}
}

func TestStaleList(t *testing.T) {
	b, m, rec := wrapped(t, Profile{StaleList: 1, StaleMS: 500})
	now := time.Unix(1000, 0)
	b.now = func() time.Time { return now }
	putDirect(t, m, "a-old", `{}`)  // written before, not through the wrapper
	putDirect(t, b, "b-new", `{}`)  // a recent write
	putDirect(t, b, "c-new2", `{}`) // another
	keys := func() []string {
		p, err := b.List(bg, tenant, backend.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for _, e := range p.Entries {
			ks = append(ks, e.Key)
		}
		return ks
	}
	if got := keys(); !reflect.DeepEqual(got, []string{"a-old"}) {
		t.Fatalf("stale listing = %v, want only a-old", got)
	}
	now = now.Add(500 * time.Millisecond)
	if got := keys(); !reflect.DeepEqual(got, []string{"a-old", "b-new", "c-new2"}) {
		t.Fatalf("listing after the window = %v, want all three", got)
	}
	if got := rec.faults(); len(got) != 2 || got[0] != "stale_list" {
		t.Fatalf("observer heard %v, want two stale_list", got)
	}
}

func TestOpsFilter(t *testing.T) {
	b, m, _ := wrapped(t, Profile{FailBefore: 1, Ops: []string{"put"}})
	putDirect(t, m, "k", `{}`)
	if _, err := b.Get(bg, tenant, "k"); err != nil {
		t.Fatalf("Get with faults on put only: %v", err)
	}
	if _, err := b.Put(bg, tenant, "k2", version(t, `{}`), []byte(`{}`), backend.Precondition{}); !errors.Is(err, fault.ErrTransient) {
		t.Fatalf("Put with faults on put: %v, want transient", err)
	}
}

// workload makes the same calls per key whatever the interleaving: 8
// goroutines, each on its own keys, a put, gets, a stat and a listing of
// its own prefix per key.
func workload(b *Backend) {
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				key := fmt.Sprintf("w%d/%03d", w, i)
				body := fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)
				v := doc.Derive(nil, 1, doc.Timestamp(i+1), []byte(body), false)
				for b.putRetry(key, v, body) != nil {
				}
				for range 3 {
					b.Get(bg, tenant, key)
				}
				b.Stat(bg, tenant, key)
				b.List(bg, tenant, backend.ListOptions{Prefix: key})
			}
		})
	}
	wg.Wait()
}

func (b *Backend) putRetry(key string, v doc.Version, body string) error {
	_, err := b.Put(bg, tenant, key, v, []byte(body), backend.Precondition{})
	return err
}

// TestReplay: the same seed gives the same schedule under a concurrent
// workload; another seed gives another.
func TestReplay(t *testing.T) {
	p := Profile{FailBefore: 0.2, FailAfter: 0.1, Throttle: 0.05, RetryAfterS: 0.001,
		CorruptFlip: 0.1, CorruptTruncate: 0.1, Latency: Latency{P: 0.1, MeanMS: 0.01, MaxMS: 0.05}}
	run := func(seed uint64) []Injection {
		b := Wrap(mem.New("m1"), 7, nil)
		p := p
		p.Seed = seed
		if err := b.SetProfile(p); err != nil {
			t.Fatal(err)
		}
		workload(b)
		return b.Schedule()
	}
	a, again, other := run(99), run(99), run(100)
	if len(a) < 100 {
		t.Fatalf("only %d injections: the test compares too little", len(a))
	}
	if !reflect.DeepEqual(a, again) {
		for i := range min(len(a), len(again)) {
			if a[i] != again[i] {
				t.Fatalf("same seed, different schedules (%d vs %d entries); first difference at %d: %+v vs %+v", len(a), len(again), i, a[i], again[i])
			}
		}
		t.Fatalf("same seed, different schedules: %d vs %d entries", len(a), len(again))
	}
	if reflect.DeepEqual(a, other) {
		t.Fatal("seeds 99 and 100 gave the same schedule")
	}
	kinds := map[string]bool{}
	for _, in := range a {
		kinds[in.Fault] = true
	}
	for _, f := range []string{"fail_before", "fail_after", "throttle", "corrupt_flip", "corrupt_truncate", "latency"} {
		if !kinds[f] {
			t.Errorf("no %s in the schedule", f)
		}
	}
}

// TestSetProfileRestartsSchedule: the ordinals restart, so setting the
// same profile again replays it on the same wrapper.
func TestSetProfileRestartsSchedule(t *testing.T) {
	b := Wrap(mem.New("m1"), 5, nil)
	p := Profile{FailBefore: 0.5}
	outcomes := func() string {
		b.SetProfile(p)
		var s strings.Builder
		for range 40 {
			_, err := b.Stat(bg, tenant, "k")
			if errors.Is(err, fault.ErrTransient) {
				s.WriteByte('x')
			} else {
				s.WriteByte('.')
			}
		}
		return s.String()
	}
	first, second := outcomes(), outcomes()
	if first != second {
		t.Fatalf("the same profile set twice gave %s then %s", first, second)
	}
	if !strings.Contains(first, "x") || !strings.Contains(first, ".") {
		t.Fatalf("fail_before 0.5 over 40 calls gave %s", first)
	}
}

func TestParseProfile(t *testing.T) {
	good := `{"seed":7,"fail_before":0.1,"fail_after":0.2,"latency":{"p":0.5,"mean_ms":20,"max_ms":100},
		"partition":"hang","throttle":0.1,"retry_after_s":2,"corrupt_flip":0.01,"corrupt_truncate":0.01,
		"stale_list":0.5,"stale_ms":2000,"ops":["put","get"]}`
	p, err := ParseProfile([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := Profile{Seed: 7, FailBefore: 0.1, FailAfter: 0.2, Latency: Latency{P: 0.5, MeanMS: 20, MaxMS: 100},
		Partition: "hang", Throttle: 0.1, RetryAfterS: 2, CorruptFlip: 0.01, CorruptTruncate: 0.01,
		StaleList: 0.5, StaleMS: 2000, Ops: []string{"put", "get"}}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
	for _, c := range []struct{ body, field string }{
		{`{"fail_before":1.5}`, "fail_before:"},
		{`{"fail_after":-0.1}`, "fail_after:"},
		{`{"throttle":"often"}`, "throttle:"},
		{`{"latency":{"p":0.5}}`, "latency.mean_ms:"},
		{`{"latency":{"p":2,"mean_ms":1}}`, "latency.p:"},
		{`{"latency":{"p":0.5,"mean_ms":10,"max_ms":5}}`, "latency.max_ms:"},
		{`{"partition":"sometimes"}`, "partition:"},
		{`{"retry_after_s":-1}`, "retry_after_s:"},
		{`{"stale_ms":-1}`, "stale_ms:"},
		{`{"ops":["scan"]}`, "ops:"},
		{`{"fail_befor":0.1}`, "fail_befor: unknown field"},
		{`{"corrupt_flip":0.1`, "invalid JSON"},
		{``, "empty body"},
		{`{} {}`, "the body holds more than one"},
	} {
		_, err := ParseProfile([]byte(c.body))
		if fault.ClassOf(err) != fault.Invalid || !strings.HasPrefix(fault.MessageOf(err), c.field) {
			t.Errorf("ParseProfile(%s) = %v, want invalid starting %q", c.body, err, c.field)
		}
	}
	b := Wrap(mem.New("m"), 1, nil)
	if err := b.SetProfile(Profile{FailAfter: 2}); fault.ClassOf(err) != fault.Invalid {
		t.Fatalf("SetProfile with a bad profile: %v", err)
	}
	if !b.Profile().IsZero() {
		t.Fatalf("a rejected profile was put in force: %+v", b.Profile())
	}
}

func TestBallast(t *testing.T) {
	b := Ballast(1 << 20)
	if len(b) != 1<<20 || b[0] != 1 {
		t.Fatalf("ballast of %d bytes, first byte %d", len(b), b[0])
	}
	if Ballast(0) != nil {
		t.Fatal("Ballast(0) allocated")
	}
}

// TestDrawIsUniform: the draws over ordinals, and over seeds, are spread
// evenly, so a probability in a profile is the rate a run sees.
func TestDrawIsUniform(t *testing.T) {
	const n = 100_000
	var byOrdinal, bySeed [10]int
	for i := range uint64(n) {
		byOrdinal[int(unit(draw(42, backend.OpStat, tenant, "k", i, "fail_before"))*10)]++
		bySeed[int(unit(draw(i, backend.OpStat, tenant, "k", 0, "fail_before"))*10)]++
	}
	for d := range 10 {
		for name, h := range map[string][10]int{"ordinals": byOrdinal, "seeds": bySeed} {
			if h[d] < n/10*95/100 || h[d] > n/10*105/100 {
				t.Errorf("over %s, decile %d holds %d of %d draws", name, d, h[d], n)
			}
		}
	}
}
