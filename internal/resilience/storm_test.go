package resilience

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestStorm: 100 callers against a backend that fails every call for 30s
// and then recovers. The retry budget must keep total attempts within
// (1 + share) × first attempts plus the per-window minimum; the breaker
// must close within OpenDelay of the recovery and every caller succeed.
func TestStorm(t *testing.T) {
	t.Run("budget and breaker", func(t *testing.T) { storm(t, true) })
	// With the breaker out of the way the budget alone must hold the bound.
	t.Run("budget only", func(t *testing.T) { storm(t, false) })
}

func storm(t *testing.T, withBreaker bool) {
	synctest.Test(t, func(t *testing.T) {
		const (
			callers    = 100
			failFor    = 30 * time.Second
			share      = 0.2
			minRetries = 5
			window     = 10 * time.Second
			openDelay  = 2 * time.Second
			pause      = 100 * time.Millisecond
		)
		start := time.Now()
		recovered := start.Add(failFor)

		var firsts, attempts atomic.Int64
		var mu sync.Mutex
		var closedAt time.Time // guarded by mu: first close after recovery
		obs := ObserverFunc(func(_ string, _, to State) {
			mu.Lock()
			defer mu.Unlock()
			if to == Closed && closedAt.IsZero() && !time.Now().Before(recovered) {
				closedAt = time.Now()
			}
		})
		cfg := Config{
			MaxAttempts: 4, BaseDelay: 50 * time.Millisecond, MaxDelay: time.Second,
			BudgetShare: share, BudgetMinRetries: minRetries, BudgetWindow: window,
			ConsecutiveFailures: 5, FailureRate: 0.5, MinCalls: 20, FailureWindow: window,
			OpenDelay: openDelay, HalfOpenProbes: 3, MaxConcurrent: -1, AttemptTimeout: -1,
			Observer: obs,
		}
		if !withBreaker {
			cfg.ConsecutiveFailures, cfg.MinCalls = 1<<30, 1<<30
		}
		p := newPolicy(t, cfg)

		var wg sync.WaitGroup
		var succeededAt [callers]time.Time
		for i := range callers {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(i), 7))
				for {
					n := 0
					err := p.Run(context.Background(), "get", func(context.Context) error {
						n++
						if n == 1 {
							firsts.Add(1)
						}
						attempts.Add(1)
						if time.Now().Before(recovered) {
							return errTransient
						}
						return nil
					})
					if err == nil {
						succeededAt[i] = time.Now()
						return
					}
					// The caller's own pacing between calls (fake time).
					advance(pause + time.Duration(rnd.Int64N(int64(pause))))
				}
			})
		}
		wg.Wait()

		windows := int64(failFor/window) + 2 // windows touched while failing, plus the recovery one
		limit := int64((1+share)*float64(firsts.Load())) + minRetries*windows
		t.Logf("firsts=%d attempts=%d limit=%d", firsts.Load(), attempts.Load(), limit)
		if attempts.Load() > limit {
			t.Errorf("attempts = %d, want ≤ (1+%.1f)×%d + %d×%d = %d", attempts.Load(), share, firsts.Load(), minRetries, windows, limit)
		}
		if !withBreaker {
			for i, at := range succeededAt {
				if at.IsZero() || at.Sub(recovered) > time.Second {
					t.Errorf("caller %d succeeded at +%v after recovery", i, at.Sub(recovered))
				}
			}
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if closedAt.IsZero() {
			t.Fatalf("breaker never closed after recovery")
		}
		// Open at most openDelay more, then the callers' pause before the probes arrive.
		if late := closedAt.Sub(recovered); late > openDelay+2*pause*2 {
			t.Errorf("breaker closed %v after recovery, want within OpenDelay %v (+ caller pause)", late, openDelay)
		}
		for i, at := range succeededAt {
			if at.IsZero() || at.Sub(recovered) > openDelay+time.Second {
				t.Errorf("caller %d succeeded at +%v after recovery", i, at.Sub(recovered))
			}
		}
	})
}
