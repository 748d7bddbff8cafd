package reconcile

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

func TestLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		l  Limits
		ok bool
	}{
		{Limits{}, true},
		{Limits{Concurrency: 1, OpsPerSec: 0.5, BytesPerSec: 1}, true},
		{Limits{Concurrency: -1}, false},
		{Limits{OpsPerSec: -1}, false},
		{Limits{BytesPerSec: math.Inf(1)}, false},
		{Limits{OpsPerSec: math.NaN()}, false},
	} {
		err := tc.l.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok %v", tc.l, err, tc.ok)
		}
		if err != nil && fault.ClassOf(err) != fault.Config {
			t.Errorf("%+v: class %v, want config", tc.l, fault.ClassOf(err))
		}
	}
	if _, err := New(Config{Store: openStore(t, "a"), Backend: mem.New("b"), Policy: testPolicy(t, "b", false),
		Limits: Limits{Concurrency: -2}}); err == nil {
		t.Fatal("New accepted a negative concurrency")
	}
}

// gatedBackend holds every data call until the test lets it go, and
// records how many were inside at once.
type gatedBackend struct {
	backend.Backend
	entered chan struct{} // a call is inside (unbuffered: the test sees each)
	gate    chan struct{} // a token lets one call finish

	mu        sync.Mutex // guards cur, peak
	cur, peak int
	calls     atomic.Int64
	free      atomic.Bool // calls pass without the gate
}

func newGated(b backend.Backend) *gatedBackend {
	return &gatedBackend{Backend: b, entered: make(chan struct{}), gate: make(chan struct{}, 1024)}
}

func (g *gatedBackend) hold(ctx context.Context) error {
	g.calls.Add(1)
	g.mu.Lock()
	g.cur++
	g.peak = max(g.peak, g.cur)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.cur--
		g.mu.Unlock()
	}()
	if !g.free.Load() {
		select {
		case g.entered <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-g.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (g *gatedBackend) List(ctx context.Context, tenant string, o backend.ListOptions) (backend.Page, error) {
	if err := g.hold(ctx); err != nil {
		return backend.Page{}, err
	}
	return g.Backend.List(ctx, tenant, o)
}

func (g *gatedBackend) Stat(ctx context.Context, tenant, key string) (backend.Entry, error) {
	if err := g.hold(ctx); err != nil {
		return backend.Entry{}, err
	}
	return g.Backend.Stat(ctx, tenant, key)
}

func (g *gatedBackend) Get(ctx context.Context, tenant, key string) (*backend.Object, error) {
	if err := g.hold(ctx); err != nil {
		return nil, err
	}
	return g.Backend.Get(ctx, tenant, key)
}

func (g *gatedBackend) Put(ctx context.Context, tenant, key string, v doc.Version, body []byte, pre backend.Precondition) (string, error) {
	if err := g.hold(ctx); err != nil {
		return "", err
	}
	return g.Backend.Put(ctx, tenant, key, v, body, pre)
}

// TestConcurrencyBoundSharedByRoundAndUploader runs a round of one tenant
// and an 8-wide upload of another on one engine with Limits.Concurrency 3:
// never more than 3 backend calls are inside at once, and 3 are (the
// bound, not the workload, is what held them).
//
// It runs in a synctest bubble so that the count is taken, not hoped for:
// each step waits until every goroutine is durably blocked (a call held at
// the gate or waiting for a slot, or finished), counts the calls inside,
// and only then lets them go. The uploader alone wants 8 calls at once, so
// the first such step finds the bound full; a limiter that let a fourth
// call through would be seen at that same step.
func TestConcurrencyBoundSharedByRoundAndUploader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 3
		g := newGated(mem.New("b"))
		a := openStore(t, "a")
		e := newEngine(t, a, g, func(c *Config) { c.UploadConcurrency, c.Limits = 8, Limits{Concurrency: limit} })
		for i := range 20 {
			if _, err := a.Put(bg, "up", fmt.Sprintf("k%02d", i), []byte(`{}`), doc.Precondition{}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Put(bg, "round", fmt.Sprintf("k%02d", i), []byte(`{}`), doc.Precondition{}); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 2)
		go func() { _, err := e.Upload(bg, "up"); done <- err }()
		go func() { _, err := e.Round(bg, "round"); done <- err }()
		finished := 0
		// drain lets every call through and waits for both to end, so that
		// a failed check still leaves no goroutine behind in the bubble.
		drain := func() {
			g.free.Store(true)
			for finished < 2 {
				select {
				case <-g.entered:
					g.gate <- struct{}{}
				case <-done:
					finished++
				}
			}
		}
		defer drain()
		peak := 0
		for finished < 2 {
			synctest.Wait()
			g.mu.Lock()
			inside := g.cur
			g.mu.Unlock()
			if inside > limit {
				t.Fatalf("%d backend calls inside at once, want at most %d", inside, limit)
			}
			peak = max(peak, inside)
			for range inside {
				<-g.entered
				g.gate <- struct{}{}
			}
			ended := 0
			for drained := false; !drained; {
				select {
				case err := <-done:
					ended++
					finished++
					if err != nil {
						t.Fatal(err)
					}
				default:
					drained = true
				}
			}
			if inside == 0 && ended == 0 {
				t.Fatal("no backend call inside and neither the round nor the upload ended: both are stuck")
			}
		}
		if peak != limit {
			t.Fatalf("peak concurrent backend calls %d, want %d (calls %d)", peak, limit, g.calls.Load())
		}
	})
}

// TestOpsPerSecond: calls are spaced by the ops/s bucket (a lower bound
// on the time: a loaded machine can only be slower).
func TestOpsPerSecond(t *testing.T) {
	const rate = 100.0
	g := newGated(mem.New("b"))
	g.free.Store(true) // no gate: only count
	a := openStore(t, "a")
	e := newEngine(t, a, g, func(c *Config) { c.Limits = Limits{OpsPerSec: rate} })
	for i := range 20 {
		put(t, a, fmt.Sprintf("k%02d", i), `{}`)
	}
	start := time.Now()
	if _, err := e.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	burst := rate / 10
	if min := time.Duration((float64(g.calls.Load()) - burst) / rate * float64(time.Second)); took < min-20*time.Millisecond {
		t.Fatalf("%d calls took %v at %v ops/s, want at least %v", g.calls.Load(), took, rate, min)
	}
}

// TestBytesPerSecond: document bytes written are paced by the bytes/s
// bucket.
func TestBytesPerSecond(t *testing.T) {
	const rate = 1 << 20
	b := mem.New("b")
	a := openStore(t, "a")
	e := newEngine(t, a, b, func(c *Config) { c.Limits = Limits{BytesPerSec: rate} })
	body := `{"pad":"` + strings.Repeat("x", 128<<10) + `"}`
	for i := range 4 {
		put(t, a, fmt.Sprintf("k%d", i), body)
	}
	start := time.Now()
	st, err := e.Upload(bg, tenant)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if st.BytesUp != int64(4*len(body)) {
		t.Fatalf("bytes up %d, want %d", st.BytesUp, 4*len(body))
	}
	burst := float64(max(minByteBurst, rate/10))
	if min := time.Duration((float64(st.BytesUp) - burst) / rate * float64(time.Second)); took < min-20*time.Millisecond {
		t.Fatalf("%d bytes took %v at %v B/s, want at least %v", st.BytesUp, took, rate, min)
	}
}

// TestLimiterWaitHonoursContext: a caller waiting on the limiter leaves
// when its context ends, with a context error (never a backend fault that
// would count against the breaker).
func TestLimiterWaitHonoursContext(t *testing.T) {
	b := mem.New("b")
	a := openStore(t, "a")
	e := newEngine(t, a, b, func(c *Config) { c.Limits = Limits{OpsPerSec: 1} })
	for i := range 5 {
		put(t, a, fmt.Sprintf("k%d", i), `{}`)
	}
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.Upload(ctx, tenant)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Upload at 1 op/s under a 100ms deadline: %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Fatalf("Upload waited %v past its deadline for a token", took)
	}
	if st := e.cfg.Policy.State(); st.String() != "closed" {
		t.Fatalf("breaker %v after limiter waits", st)
	}

	// The slot wait: one slot, held by a call the gate keeps inside.
	g := newGated(mem.New("c"))
	e2 := newEngine(t, a, g, func(c *Config) { c.Limits = Limits{Concurrency: 1} })
	held := make(chan error, 1)
	go func() { _, err := e2.Round(bg, tenant); held <- err }()
	<-g.entered // the round's List is inside and holds the one slot
	ctx2, cancel2 := context.WithCancel(bg)
	errc := make(chan error, 1)
	go func() { _, err := e2.Upload(ctx2, tenant); errc <- err }()
	cancel2()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Upload waiting for a slot, canceled: %v", err)
	}
	// The Upload above may see the cancellation before it reaches the slot
	// wait; asking the limiter itself, with its one slot still held,
	// exercises that wait every time (it would block if it ignored ctx).
	if _, err := e2.lim.acquire(ctx2); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with the slot held, canceled: %v", err)
	}
	g.free.Store(true) // let the rest of the round through ungated
	g.gate <- struct{}{}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
}

// TestDefaultUploadWidth: with default settings the uploader keeps 16
// puts to the backend in flight at once, and the default backend bound
// lets them all through. Each put's latency is
// spent waiting, not working, so the width is the uploader's throughput:
// with 8 at once a node on a loopback S3 server fell tens of seconds
// behind 1,000 writes/s (docs/performance.md, "Replication between
// nodes").
//
// As in TestConcurrencyBoundSharedByRoundAndUploader, the count is taken
// in a synctest bubble once every goroutine is durably blocked: every
// put the uploader started is at the gate.
func TestDefaultUploadWidth(t *testing.T) {
	const want = 16
	synctest.Test(t, func(t *testing.T) {
		g := newGated(mem.New("b"))
		a := openStore(t, "a")
		e := newEngine(t, a, g, nil)
		for i := range 2 * want {
			put(t, a, fmt.Sprintf("k%03d", i), `{}`)
		}
		done := make(chan error, 1)
		go func() { _, err := e.Upload(bg, tenant); done <- err }()
		synctest.Wait()
		g.mu.Lock()
		inside := g.cur
		g.mu.Unlock()
		g.free.Store(true)
		for range inside {
			<-g.entered
			g.gate <- struct{}{}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if inside != want {
			t.Fatalf("%d puts in flight at once with default settings, want %d", inside, want)
		}
		if DefaultConcurrency < 2*want {
			t.Fatalf("the backend's default bound %d leaves a round less than half of it beside the uploader's %d", DefaultConcurrency, want)
		}
	})
}
