package resilience

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/cairnstore/cairn/internal/fault"
)

var (
	errTransient  = fault.New(fault.Transient, fault.Context{}, "connection reset")
	errCorruption = fault.New(fault.Corruption, fault.Context{}, "hash mismatch")
	errConfig     = fault.New(fault.Config, fault.Context{}, "no such bucket")
	errInvalid    = fault.New(fault.Invalid, fault.Context{}, "bad key")
	errNotFound   = fault.New(fault.NotFound, fault.Context{}, "no such key")
)

// backend is a fake dependency: fail decides each call's error.
type backend struct {
	calls atomic.Int64
	fail  func(n int64) error // n counts from 1
}

func (b *backend) call(ctx context.Context) error {
	n := b.calls.Add(1)
	if b.fail == nil {
		return nil
	}
	return b.fail(n)
}

func always(err error) func(int64) error { return func(int64) error { return err } }

func newPolicy(t *testing.T, c Config) *Policy {
	t.Helper()
	if c.Backend == "" {
		c.Backend = "test"
	}
	if c.Logger == nil {
		c.Logger = discard
	}
	if c.Rand == nil {
		c.Rand = seeded(1)
	}
	p, err := New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func TestFullJitterBoundsAndSpread(t *testing.T) {
	base, maxDelay := 100*time.Millisecond, 2*time.Second
	rnd := seeded(42)
	for n := 1; n <= 8; n++ {
		ceil := min(base<<(n-1), maxDelay)
		var deciles [10]int
		const samples = 2000
		for range samples {
			d := fullJitter(n, base, maxDelay, rnd)
			if d < 0 || d >= ceil {
				t.Fatalf("retry %d: delay %v outside [0, %v)", n, d, ceil)
			}
			deciles[int(10*d/ceil)]++
		}
		// Full jitter is uniform over [0, ceil): every tenth of the range
		// gets about samples/10; a floor or a centred jitter would leave
		// the low deciles empty.
		for i, got := range deciles {
			if got < samples/20 {
				t.Errorf("retry %d: decile %d has %d of %d samples, want ≥ %d (spread)", n, i, got, samples, samples/20)
			}
		}
	}
	if got := fullJitter(60, base, maxDelay, func() float64 { return 0.999999 }); got >= maxDelay || got < maxDelay*99/100 {
		t.Errorf("retry 60: delay %v, want just under the cap %v (no overflow)", got, maxDelay)
	}
}

// TestBackoffSequence drives real retries and checks each gap between
// attempts against its full-jitter ceiling.
func TestBackoffSequence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var times []time.Time
		b := &backend{fail: func(int64) error { times = append(times, time.Now()); return errTransient }}
		p := newPolicy(t, Config{MaxAttempts: 6, BaseDelay: 100 * time.Millisecond, MaxDelay: 400 * time.Millisecond,
			BudgetMinRetries: 100, ConsecutiveFailures: 100, MinCalls: 100})
		err := p.Run(context.Background(), "get", b.call)
		if !errors.Is(err, fault.ErrTransient) {
			t.Fatalf("Run = %v, want transient", err)
		}
		if got := len(times); got != 6 {
			t.Fatalf("attempts = %d, want 6", got)
		}
		ceilings := []time.Duration{100, 200, 400, 400, 400}
		for i := 1; i < len(times); i++ {
			gap, ceil := times[i].Sub(times[i-1]), ceilings[i-1]*time.Millisecond
			if gap < 0 || gap >= ceil {
				t.Errorf("gap before attempt %d = %v, want in [0, %v)", i+1, gap, ceil)
			}
		}
	})
}

func TestBudget(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBudget(0.2, 0, 10*time.Second, func() time.Time { return now })
	for range 50 {
		b.RecordFirst()
	}
	got := 0
	for b.TryRetry() {
		got++
	}
	if got != 10 {
		t.Errorf("retries allowed for 50 first attempts at share 0.2 = %d, want 10", got)
	}
	now = now.Add(5 * time.Second)
	if b.TryRetry() {
		t.Errorf("retry allowed half a window later, want denied")
	}
	now = now.Add(6 * time.Second) // the first 50 have left the window
	if f, r := b.Counts(); f != 0 || r != 0 {
		t.Errorf("after the window: counts = %d, %d; want 0, 0", f, r)
	}
	b2 := NewBudget(0.5, 3, time.Second, func() time.Time { return now })
	for i := range 3 {
		if !b2.TryRetry() {
			t.Errorf("min retry %d denied with no traffic", i)
		}
	}
	if b2.TryRetry() {
		t.Errorf("4th retry allowed, want only minRetries=3")
	}
	b2.refund()
	if !b2.TryRetry() {
		t.Errorf("refunded retry not available")
	}
}

func TestRetriesStopWhenBudgetSpent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backend{fail: always(errTransient)}
		p := newPolicy(t, Config{MaxAttempts: 10, BudgetShare: 0.5, BudgetMinRetries: -1, BudgetWindow: time.Hour,
			ConsecutiveFailures: 1000, MinCalls: 1000})
		const calls = 20
		for range calls {
			if err := p.Run(context.Background(), "get", b.call); !errors.Is(err, fault.ErrTransient) {
				t.Fatalf("Run = %v, want the transient error itself", err)
			}
		}
		// Without a budget: 20 × 10 attempts. With share 0.5: ≤ 20 + 10.
		if got, limit := b.calls.Load(), int64(calls+calls/2); got > limit {
			t.Errorf("attempts = %d, want ≤ %d", got, limit)
		}
		if f, r := p.Budget().Counts(); f != calls || float64(r) > 0.5*float64(f) {
			t.Errorf("budget counts firsts=%d retries=%d, want %d and ≤ half", f, r, calls)
		}
	})
}

// retryCounts is an Observer that counts what a RetryObserver and a
// ThrottleObserver hear.
type retryCounts struct {
	retries, rejected, throttled atomic.Int64
}

func (c *retryCounts) OnThrottled(string) { c.throttled.Add(1) }

// TestThrottlesObserved: every attempt answered "slow down" is counted,
// the last one too, and no other failure is.
func TestThrottlesObserved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		obs := &retryCounts{}
		p := newPolicy(t, Config{MaxAttempts: 3, BudgetMinRetries: 100, ConsecutiveFailures: 1000, MinCalls: 1000, Observer: obs})
		slow := &backend{fail: always(fault.Throttled(errTransient))}
		p.Run(context.Background(), "put", slow.call)
		other := &backend{fail: always(errTransient)}
		p.Run(context.Background(), "put", other.call)
		if got := obs.throttled.Load(); got != 3 || slow.calls.Load() != 3 {
			t.Errorf("throttled answers observed %d of %d attempts, want all 3 (and none of the other failures)", got, slow.calls.Load())
		}
	})
}

func (*retryCounts) OnStateChange(string, State, State) {}
func (c *retryCounts) OnRetry(string)                   { c.retries.Add(1) }
func (c *retryCounts) OnBudgetRejection(string)         { c.rejected.Add(1) }

// TestRetriesObserved: the observer hears every attempt after a call's
// first, and every retry the budget refused while attempts remained — not
// the budget's answer after a call's last attempt, where no retry was due.
func TestRetriesObserved(t *testing.T) {
	for _, attempts := range []int{1, 3} {
		synctest.Test(t, func(t *testing.T) {
			b := &backend{fail: always(errTransient)}
			obs := &retryCounts{}
			p := newPolicy(t, Config{MaxAttempts: attempts, BudgetShare: 0.5, BudgetMinRetries: -1, BudgetWindow: time.Hour,
				ConsecutiveFailures: 1000, MinCalls: 1000, Observer: obs})
			refused := int64(0) // calls that ended before their last attempt
			for range 20 {
				before := b.calls.Load()
				p.Run(context.Background(), "get", b.call)
				if b.calls.Load()-before < int64(attempts) {
					refused++
				}
			}
			if got, want := obs.retries.Load(), b.calls.Load()-20; got != want {
				t.Errorf("MaxAttempts %d: retries observed %d, want %d (the attempts after each call's first)", attempts, got, want)
			}
			if got := obs.rejected.Load(); got != refused || (attempts > 1 && got == 0) {
				t.Errorf("MaxAttempts %d: budget rejections observed %d, want %d (the calls it cut short)", attempts, got, refused)
			}
		})
	}
}

func TestPerClass(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantCalls int64
		wantClass fault.Class
	}{
		{"transient retried to max attempts", errTransient, 3, fault.Transient},
		{"corruption never retried", errCorruption, 1, fault.Corruption},
		{"config fails fast", errConfig, 1, fault.Config},
		{"invalid fails fast", errInvalid, 1, fault.Invalid},
		{"not found fails fast", errNotFound, 1, fault.NotFound},
		{"wrapped transient retried", fmt.Errorf("s3: %w", errTransient), 3, fault.Transient},
		{"deadline exceeded is transient", context.DeadlineExceeded, 3, fault.Transient},
		{"unknown fails fast", errors.New("mystery"), 1, fault.Unknown},
		{"exhausted (429) not retried", fault.FromHTTPStatus(429, ""), 1, fault.Exhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := &backend{fail: always(tt.err)}
				p := newPolicy(t, Config{MaxAttempts: 3, ConsecutiveFailures: 100, MinCalls: 100})
				err := p.Run(context.Background(), "backend.get", b.call)
				if got := b.calls.Load(); got != tt.wantCalls {
					t.Errorf("calls = %d, want %d", got, tt.wantCalls)
				}
				if got := fault.ClassOf(err); got != tt.wantClass {
					t.Errorf("class = %v, want %v (err %v)", got, tt.wantClass, err)
				}
				if c := fault.ContextOf(err); c.Backend != "test" || c.Op != "backend.get" {
					t.Errorf("context = %+v, want backend test, op backend.get", c)
				}
				if !errors.Is(err, tt.err) {
					t.Errorf("cause lost: %v does not wrap %v", err, tt.err)
				}
			})
		})
	}
}

func TestConfigFailsFast(t *testing.T) {
	tests := []struct {
		cfg     Config
		setting string
	}{
		{Config{}, "Backend"},
		{Config{Backend: "b", MaxAttempts: -1}, "MaxAttempts"},
		{Config{Backend: "b", BaseDelay: time.Second, MaxDelay: time.Millisecond}, "BaseDelay"},
		{Config{Backend: "b", BudgetShare: 1.5}, "BudgetShare"},
		{Config{Backend: "b", FailureRate: 2}, "FailureRate"},
		{Config{Backend: "b", AttemptTimeout: -2}, "AttemptTimeout"},
		{Config{Backend: "b", MaxConcurrent: -5}, "MaxConcurrent"},
		{Config{Backend: "b", QueueWait: -time.Second}, "QueueWait"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if !errors.Is(err, fault.ErrConfig) || !strings.Contains(err.Error(), tt.setting) {
			t.Errorf("New(%+v) = %v, want a config error naming %s", tt.cfg, err, tt.setting)
		}
	}
	if _, err := New(Config{Backend: "ok", Logger: discard}); err != nil {
		t.Errorf("New(defaults) = %v", err)
	}
}

func TestBreakerCycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		var fail atomic.Bool
		b := &backend{fail: func(int64) error {
			if fail.Load() {
				return errTransient
			}
			return nil
		}}
		p := newPolicy(t, Config{MaxAttempts: 1, ConsecutiveFailures: 3, MinCalls: 100,
			OpenDelay: 2 * time.Second, HalfOpenProbes: 2, Observer: rec})
		ctx := context.Background()

		fail.Store(true)
		for range 3 {
			_ = p.Run(ctx, "get", b.call)
		}
		if p.State() != Open {
			t.Fatalf("after 3 failures: state %v, want open", p.State())
		}
		// Open: fail at once, without calling, class Exhausted, Retry-After.
		before := b.calls.Load()
		advance(500 * time.Millisecond)
		err := p.Run(ctx, "get", b.call)
		if b.calls.Load() != before {
			t.Errorf("open breaker called the backend")
		}
		if !errors.Is(err, fault.ErrExhausted) {
			t.Errorf("open breaker error = %v, want exhausted", err)
		}
		if ra, ok := fault.RetryAfter(err); !ok || ra != 1500*time.Millisecond {
			t.Errorf("open breaker Retry-After = %v, %v; want 1.5s (remaining delay)", ra, ok)
		}
		if d := p.OpenFor(); d != 1500*time.Millisecond {
			t.Errorf("OpenFor = %v, want 1.5s", d)
		}

		// After the delay: half-open, two good probes close it.
		advance(1500 * time.Millisecond)
		fail.Store(false)
		for i := range 2 {
			if err := p.Run(ctx, "get", b.call); err != nil {
				t.Fatalf("probe %d: %v", i, err)
			}
		}
		if p.State() != Closed {
			t.Fatalf("after 2 good probes: state %v, want closed", p.State())
		}
		if d := p.OpenFor(); d != 0 {
			t.Errorf("OpenFor of a closed breaker = %v, want 0", d)
		}

		// Open again; a failed probe sends it back to open.
		fail.Store(true)
		for range 3 {
			_ = p.Run(ctx, "get", b.call)
		}
		advance(2 * time.Second)
		_ = p.Run(ctx, "get", b.call)
		if p.State() != Open {
			t.Errorf("after a failed probe: state %v, want open", p.State())
		}
		want := []string{
			"test:closed->open", "test:open->half_open", "test:half_open->closed",
			"test:closed->open", "test:open->half_open", "test:half_open->open",
		}
		if got := strings.Join(rec.got, " "); got != strings.Join(want, " ") {
			t.Errorf("observed transitions\n got %s\nwant %s", got, strings.Join(want, " "))
		}
	})
}

func TestBreakerFailureRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Alternate success and failure: never 3 in a row, but a 50% rate.
		b := &backend{fail: func(n int64) error {
			if n%2 == 0 {
				return errTransient
			}
			return nil
		}}
		p := newPolicy(t, Config{MaxAttempts: 1, ConsecutiveFailures: 3, FailureRate: 0.5, MinCalls: 10,
			FailureWindow: time.Minute})
		for i := range 9 {
			_ = p.Run(context.Background(), "get", b.call)
			if p.State() != Closed {
				t.Fatalf("opened after %d calls, below MinCalls=10", i+1)
			}
		}
		_ = p.Run(context.Background(), "get", b.call)
		if p.State() != Open {
			t.Errorf("after 10 calls at 50%% failures: state %v, want open", p.State())
		}
	})
}

func TestNotFoundDoesNotTripBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backend{fail: always(errNotFound)}
		p := newPolicy(t, Config{MaxAttempts: 1, ConsecutiveFailures: 2, MinCalls: 2})
		for range 10 {
			_ = p.Run(context.Background(), "get", b.call)
		}
		if p.State() != Closed {
			t.Errorf("state after 10 NotFound = %v, want closed (an answer is not a failure)", p.State())
		}
	})
}

// TestBulkTransferAttempt: a call marked as a bulk transfer gets
// bulkAttempts times the attempt timeout, under the same breaker; others
// keep the attempt timeout.
func TestBulkTransferAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPolicy(t, Config{MaxAttempts: 1, AttemptTimeout: time.Second, ConsecutiveFailures: 100, MinCalls: 100})
		slow := func(ctx context.Context) error { // a transfer of 3 s
			select {
			case <-time.After(3 * time.Second):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := p.Run(context.Background(), "get_blob", slow); !errors.Is(err, timeout.ErrExceeded) {
			t.Errorf("a 3 s call with a 1 s attempt timeout: %v, want it timed out", err)
		}
		if err := p.Run(WithBulkTransfer(context.Background()), "get_blob", slow); err != nil {
			t.Errorf("the same as a bulk transfer: %v, want it done", err)
		}
		start := time.Now()
		hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
		if err := p.Run(WithBulkTransfer(context.Background()), "get_blob", hang); !errors.Is(err, timeout.ErrExceeded) ||
			time.Since(start) != bulkAttempts*time.Second {
			t.Errorf("a bulk transfer that hangs: %v after %v, want timed out after %v", err, time.Since(start), bulkAttempts*time.Second)
		}
	})
}

func TestAttemptTimeoutCancelsAttempt(t *testing.T) {
	for _, path := range []string{"fast", "full"} {
		t.Run(path, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var sawCancel atomic.Int64
				var calls atomic.Int64
				hang := func(ctx context.Context) error {
					n := calls.Add(1)
					if path == "full" && n == 1 {
						return errTransient // the first attempt fails at once; the retry hangs
					}
					<-ctx.Done()
					sawCancel.Add(1)
					return ctx.Err()
				}
				p := newPolicy(t, Config{MaxAttempts: 2, AttemptTimeout: time.Second, BaseDelay: time.Millisecond,
					MaxDelay: time.Millisecond, ConsecutiveFailures: 100, MinCalls: 100})
				if path == "fast" {
					p = newPolicy(t, Config{MaxAttempts: 1, AttemptTimeout: time.Second, ConsecutiveFailures: 100, MinCalls: 100})
				}
				start := time.Now()
				err := p.Run(context.Background(), "get", hang)
				if !errors.Is(err, timeout.ErrExceeded) || !errors.Is(err, fault.ErrTransient) {
					t.Errorf("Run = %v, want transient wrapping timeout.ErrExceeded", err)
				}
				if sawCancel.Load() != 1 {
					t.Errorf("attempt saw cancellation %d times, want 1", sawCancel.Load())
				}
				if el := time.Since(start); el < time.Second || el > time.Second+10*time.Millisecond {
					t.Errorf("elapsed %v, want ≈ 1s", el)
				}
			})
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var times []time.Time
		slow := fault.FromS3("SlowDown", 503, "3")
		b := &backend{fail: func(n int64) error {
			times = append(times, time.Now())
			if n == 1 {
				return slow
			}
			return nil
		}}
		p := newPolicy(t, Config{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond})
		if err := p.Run(context.Background(), "put", b.call); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if gap := times[1].Sub(times[0]); gap < 3*time.Second {
			t.Errorf("retry after %v, want ≥ 3s (Retry-After)", gap)
		}

		// A Retry-After past MaxRetryAfter is not waited for: the caller gets it.
		b2 := &backend{fail: always(fault.FromHTTPStatus(503, "120"))}
		p2 := newPolicy(t, Config{MaxAttempts: 3, MaxRetryAfter: time.Minute})
		err := p2.Run(context.Background(), "put", b2.call)
		if ra, _ := fault.RetryAfter(err); b2.calls.Load() != 1 || ra != 2*time.Minute {
			t.Errorf("calls = %d, Retry-After = %v; want 1 call and the 2m hint passed up", b2.calls.Load(), ra)
		}
	})
}

func TestCallerCancelStopsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		b := &backend{fail: always(errTransient)}
		p := newPolicy(t, Config{MaxAttempts: 10, BaseDelay: time.Second, MaxDelay: time.Second, BudgetMinRetries: 100})
		done := make(chan error)
		go func() { done <- p.Run(ctx, "get", b.call) }()
		synctest.Wait()
		cancel()
		err := <-done
		if got := fault.ClassOf(err); got != fault.Canceled {
			t.Errorf("class = %v, want canceled (err %v)", got, err)
		}
		if b.calls.Load() > 2 {
			t.Errorf("calls = %d after cancel, want ≤ 2", b.calls.Load())
		}
	})
}

func TestBulkheadFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := newPolicy(t, Config{MaxConcurrent: 2, AttemptTimeout: -1})
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				_ = p.Run(context.Background(), "get", func(context.Context) error { <-release; return nil })
			})
		}
		synctest.Wait()
		called := false
		err := p.Run(context.Background(), "get", func(context.Context) error { called = true; return nil })
		if called || !errors.Is(err, fault.ErrExhausted) {
			t.Errorf("third call: called=%v err=%v, want refused as exhausted", called, err)
		}
		close(release)
		wg.Wait()
		if p.State() != Closed {
			t.Errorf("bulkhead rejections tripped the breaker: %v", p.State())
		}
	})
}

func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPolicy(t, Config{RatePerSecond: 10, AttemptTimeout: -1})
		ok, refused := 0, 0
		for range 5 {
			err := p.Run(context.Background(), "get", func(context.Context) error { return nil })
			switch {
			case err == nil:
				ok++
			case errors.Is(err, fault.ErrExhausted):
				refused++
			default:
				t.Fatalf("Run = %v", err)
			}
		}
		if ok != 1 || refused != 4 {
			t.Errorf("5 calls at once at 10/s smooth: ok=%d refused=%d, want 1 and 4", ok, refused)
		}
		advance(100 * time.Millisecond)
		if err := p.Run(context.Background(), "get", func(context.Context) error { return nil }); err != nil {
			t.Errorf("after 100ms: %v, want a permit", err)
		}
	})
}

func TestGetAndFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPolicy(t, Config{MaxAttempts: 2})
		ctx := context.Background()
		v, err := Get(ctx, p, "get", func(context.Context) (string, error) { return "fresh", nil })
		if v != "fresh" || err != nil {
			t.Errorf("Get = %q, %v", v, err)
		}
		fb := func(_ context.Context, cause error) (string, error) {
			if !errors.Is(cause, fault.ErrTransient) {
				t.Errorf("fallback cause = %v, want transient", cause)
			}
			return "cached", nil
		}
		v, degraded, err := GetOrFallback(ctx, p, "get", func(context.Context) (string, error) { return "", errTransient }, fb)
		if v != "cached" || !degraded || err != nil {
			t.Errorf("GetOrFallback(transient) = %q, %v, %v; want cached, degraded", v, degraded, err)
		}
		v, degraded, err = GetOrFallback(ctx, p, "get", func(context.Context) (string, error) { return "", errNotFound }, fb)
		if v != "" || degraded || !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("GetOrFallback(not found) = %q, %v, %v; want the NotFound error, not degraded", v, degraded, err)
		}
		broken := func(context.Context, error) (string, error) { return "", errors.New("cache empty") }
		_, degraded, err = GetOrFallback(ctx, p, "get", func(context.Context) (string, error) { return "", errCorruption }, broken)
		if !degraded || !errors.Is(err, errCorruption) {
			t.Errorf("failed fallback: degraded=%v err=%v, want both errors", degraded, err)
		}
	})
}

// TestBudgetRefundAcrossBuckets: a retry taken in one bucket and refunded
// after the clock moved to the next is given back (the window total drops)
// and never goes negative when the first bucket expires.
func TestBudgetRefundAcrossBuckets(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBudget(1, 0, 10*time.Second, func() time.Time { return now })
	b.RecordFirst()
	if !b.TryRetry() {
		t.Fatal("TryRetry refused with budget left")
	}
	now = now.Add(10 * time.Second / budgetBuckets) // the next bucket
	b.refund()
	if _, retries := b.Counts(); retries != 0 {
		t.Fatalf("after the refund the window holds %d retries, want 0", retries)
	}
	now = now.Add(10 * time.Second) // every bucket expires
	if firsts, retries := b.Counts(); firsts != 0 || retries != 0 {
		t.Fatalf("after the window: firsts %d retries %d, want 0 0", firsts, retries)
	}
}

// TestCancellationIsNoFailure: a call its caller cancelled does not count
// against the backend: cancellations neither open a closed breaker nor
// send a half-open one back to open (callers that keep giving up on a
// slow backend must not hold its breaker open).
func TestCancellationIsNoFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		var result atomic.Pointer[error]
		set := func(err error) { result.Store(&err) }
		b := &backend{fail: func(int64) error { return *result.Load() }}
		p := newPolicy(t, Config{MaxAttempts: 1, ConsecutiveFailures: 3, MinCalls: 100,
			OpenDelay: 2 * time.Second, HalfOpenProbes: 2, Observer: rec})
		ctx := context.Background()
		set(context.Canceled)
		for range 5 {
			_ = p.Run(ctx, "put", b.call)
		}
		if p.State() != Closed {
			t.Fatalf("after cancellations while closed: state %v, want closed", p.State())
		}
		set(errTransient)
		for range 3 {
			_ = p.Run(ctx, "put", b.call)
		}
		advance(2 * time.Second)
		set(context.Canceled)
		for range 2 {
			_ = p.Run(ctx, "put", b.call)
		}
		if p.State() == Open {
			t.Fatalf("after two cancelled probes: state %v, want not open", p.State())
		}
		want := "test:closed->open test:open->half_open test:half_open->closed"
		if got := strings.Join(rec.got, " "); got != want {
			t.Errorf("observed transitions\n got %s\nwant %s", got, want)
		}
	})
}

// TestOpeningNamesTheFailure: the log line of a breaker opening carries the
// last failure counted, so that it says why the backend is skipped.
func TestOpeningNamesTheFailure(t *testing.T) {
	var buf bytes.Buffer
	b := &backend{fail: func(int64) error { return errTransient }}
	p := newPolicy(t, Config{MaxAttempts: 1, ConsecutiveFailures: 2, MinCalls: 100,
		Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	for range 2 {
		_ = p.Run(context.Background(), "put", b.call)
	}
	if p.State() != Open {
		t.Fatalf("state %v after 2 failures, want open", p.State())
	}
	var line struct{ Msg, To, Err string }
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if line.To != "open" || !strings.Contains(line.Err, errTransient.Error()) {
		t.Fatalf("opening logged %q, want to open with err naming %q", buf.String(), errTransient)
	}
}
