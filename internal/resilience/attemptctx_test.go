package resilience

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// withTimeoutFunc is the shape of context.WithTimeout; the conformance
// table runs the same assertions against the stdlib and against the fast
// path's attemptCtx.
type withTimeoutFunc func(parent context.Context, d time.Duration) (context.Context, context.CancelFunc)

// attemptWithTimeout adapts startAttempt/release to that shape. Call it
// inside the bubble that will use it: the Policy's pooled timers belong to
// the bubble they were made in.
func attemptWithTimeout(t *testing.T) withTimeoutFunc {
	p := newPolicy(t, Config{})
	return func(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
		s := p.startAttempt(parent, d)
		// release is once only (a second Stop could hit the timer after it
		// went back to the pool); a CancelFunc may be called again.
		return s.ctx, sync.OnceFunc(func() { p.release(s) })
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

type ctxKey struct{}

// TestAttemptCtxConformance: every case runs against context.WithTimeout
// and attemptCtx; both must give the same answers.
func TestAttemptCtxConformance(t *testing.T) {
	const d = time.Second
	cases := []struct {
		name string
		run  func(t *testing.T, withTimeout withTimeoutFunc)
	}{
		{"deadline and open until it passes", func(t *testing.T, withTimeout withTimeoutFunc) {
			start := time.Now()
			ctx, cancel := withTimeout(context.Background(), d)
			defer cancel()
			if dl, ok := ctx.Deadline(); !ok || !dl.Equal(start.Add(d)) {
				t.Errorf("Deadline() = %v, %v; want %v, true", dl, ok, start.Add(d))
			}
			advance(d - time.Nanosecond)
			synctest.Wait()
			if got := ctx.Err(); got != nil {
				t.Errorf("Err() before the deadline = %v, want nil", got)
			}
			if isClosed(ctx.Done()) {
				t.Error("Done closed before the deadline")
			}
		}},
		{"timeout: DeadlineExceeded, Done closed, cancel after keeps it", func(t *testing.T, withTimeout withTimeoutFunc) {
			ctx, cancel := withTimeout(context.Background(), d)
			done := ctx.Done()
			advance(d)
			<-done // blocks forever (a synctest deadlock) if the timer does not close it
			if got, want := ctx.Err(), context.DeadlineExceeded; got != want {
				t.Errorf("Err() = %v, want %v", got, want)
			}
			if got, want := context.Cause(ctx), context.DeadlineExceeded; got != want {
				t.Errorf("Cause() = %v, want %v", got, want)
			}
			cancel()
			cancel() // twice: Done must be closed exactly once (a second close panics)
			if got, want := ctx.Err(), context.DeadlineExceeded; got != want {
				t.Errorf("Err() after cancel = %v, want %v", got, want)
			}
			if ctx.Done() != done {
				t.Error("Done() returned a different channel after cancel")
			}
		}},
		{"cancel first: Canceled, the later deadline changes nothing", func(t *testing.T, withTimeout withTimeoutFunc) {
			ctx, cancel := withTimeout(context.Background(), d)
			done := ctx.Done()
			cancel()
			if !isClosed(done) {
				t.Fatal("Done not closed by cancel")
			}
			advance(2 * d)
			synctest.Wait()
			if got, want := ctx.Err(), context.Canceled; got != want {
				t.Errorf("Err() = %v, want %v", got, want)
			}
		}},
		{"cancel before Done is asked for: Done is a closed channel", func(t *testing.T, withTimeout withTimeoutFunc) {
			ctx, cancel := withTimeout(context.Background(), d)
			cancel()
			if !isClosed(ctx.Done()) {
				t.Error("Done() after cancel is not closed")
			}
			if got, want := ctx.Err(), context.Canceled; got != want {
				t.Errorf("Err() = %v, want %v", got, want)
			}
		}},
		{"Value passes through", func(t *testing.T, withTimeout withTimeoutFunc) {
			parent := context.WithValue(context.Background(), ctxKey{}, "v")
			ctx, cancel := withTimeout(parent, d)
			defer cancel()
			if got, want := ctx.Value(ctxKey{}), any("v"); got != want {
				t.Errorf("Value(ctxKey{}) = %v, want %v", got, want)
			}
			if got := ctx.Value("absent"); got != nil {
				t.Errorf("Value(absent) = %v, want nil", got)
			}
		}},
		{"parent cancel propagates with its error and cause", func(t *testing.T, withTimeout withTimeoutFunc) {
			parent, pcancel := context.WithCancelCause(context.Background())
			ctx, cancel := withTimeout(parent, d)
			defer cancel()
			cause := errors.New("shutting down")
			pcancel(cause)
			<-ctx.Done() // a synctest deadlock if it does not propagate
			if got, want := ctx.Err(), context.Canceled; got != want {
				t.Errorf("Err() = %v, want %v", got, want)
			}
			if got, want := context.Cause(ctx), cause; got != want {
				t.Errorf("Cause() = %v, want %v", got, want)
			}
			advance(2 * d)
			synctest.Wait()
			if got, want := ctx.Err(), context.Canceled; got != want {
				t.Errorf("Err() after the deadline = %v, want %v (the first cause stays)", got, want)
			}
		}},
		{"parent already cancelled", func(t *testing.T, withTimeout withTimeoutFunc) {
			parent, pcancel := context.WithCancel(context.Background())
			pcancel()
			ctx, cancel := withTimeout(parent, d)
			defer cancel()
			if !isClosed(ctx.Done()) {
				t.Error("Done not closed")
			}
			if got, want := ctx.Err(), context.Canceled; got != want {
				t.Errorf("Err() = %v, want %v", got, want)
			}
		}},
		{"parent's sooner deadline", func(t *testing.T, withTimeout withTimeoutFunc) {
			parent, pcancel := context.WithTimeout(context.Background(), d/2)
			defer pcancel()
			ctx, cancel := withTimeout(parent, d)
			defer cancel()
			pdl, _ := parent.Deadline()
			if dl, ok := ctx.Deadline(); !ok || !dl.Equal(pdl) {
				t.Errorf("Deadline() = %v, %v; want the parent's %v, true", dl, ok, pdl)
			}
			advance(d / 2)
			<-ctx.Done()
			if got, want := ctx.Err(), context.DeadlineExceeded; got != want {
				t.Errorf("Err() = %v, want %v", got, want)
			}
		}},
		{"a derived context is cancelled by the timeout", func(t *testing.T, withTimeout withTimeoutFunc) {
			ctx, cancel := withTimeout(context.Background(), d)
			defer cancel()
			child, ccancel := context.WithCancel(ctx)
			defer ccancel()
			advance(d)
			<-child.Done()
			if got, want := child.Err(), context.DeadlineExceeded; got != want {
				t.Errorf("child Err() = %v, want %v", got, want)
			}
		}},
		{"context.AfterFunc runs once on timeout", func(t *testing.T, withTimeout withTimeoutFunc) {
			ctx, cancel := withTimeout(context.Background(), d)
			var calls int
			var mu sync.Mutex
			context.AfterFunc(ctx, func() { mu.Lock(); calls++; mu.Unlock() })
			advance(d)
			cancel()
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			if calls != 1 {
				t.Errorf("AfterFunc ran %d times, want 1", calls)
			}
		}},
	}
	impls := []struct {
		name string
		make func(t *testing.T) withTimeoutFunc
	}{
		{"stdlib", func(*testing.T) withTimeoutFunc { return context.WithTimeout }},
		{"attemptCtx", attemptWithTimeout},
	}
	for _, tc := range cases {
		for _, impl := range impls {
			t.Run(tc.name+"/"+impl.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { tc.run(t, impl.make(t)) })
			})
		}
	}
}

// TestAttemptTimerReuse: a pooled timer fires for the attempt it is armed
// for now, not for the one it was armed for before.
func TestAttemptTimerReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPolicy(t, Config{})
		first := p.startAttempt(context.Background(), time.Second)
		p.release(first)
		second := p.startAttempt(context.Background(), 2*time.Second)
		if first.timer != nil && second.timer != first.timer {
			// sync.Pool may drop a Put (it does so at random under -race);
			// the reuse is then not exercised, but nothing is wrong.
			t.Log("timer not reused")
		}
		advance(2 * time.Second)
		<-second.ctx.Done()
		if got, want := second.ctx.Err(), context.DeadlineExceeded; got != want {
			t.Errorf("second Err() = %v, want %v", got, want)
		}
		if got, want := first.ctx.Err(), context.Canceled; got != want {
			t.Errorf("first Err() = %v, want %v", got, want)
		}
		p.release(second)
	})
}

// TestAttemptCtxNoCrossTalk races timers that fire at once and parents
// cancelled mid-attempt against attempts that must not end, all sharing
// one Policy's timer pool, in real time: a timer dropped because its
// callback started must never cancel a later attempt. Run it with -race.
func TestAttemptCtxNoCrossTalk(t *testing.T) {
	p := newPolicy(t, Config{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				switch (g + i) % 3 {
				case 0: // fires during the attempt or right after it
					s := p.startAttempt(context.Background(), time.Duration(i%4)*time.Microsecond+1)
					runtime.Gosched()
					p.release(s)
					if err := s.ctx.Err(); err != context.DeadlineExceeded && err != context.Canceled {
						t.Errorf("Err() = %v", err)
					}
				case 1: // the parent is cancelled during the attempt
					parent, cancel := context.WithCancel(context.Background())
					s := p.startAttempt(parent, time.Hour)
					cancel()
					<-s.ctx.Done()
					p.release(s)
				case 2: // must stay open until released
					s := p.startAttempt(context.Background(), time.Hour)
					done := s.ctx.Done()
					runtime.Gosched()
					if isClosed(done) {
						t.Errorf("an attempt with an hour to go was cancelled: %v", s.ctx.Err())
					}
					p.release(s)
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkAttemptContext compares the per-attempt context alone, stdlib
// against attemptCtx, for a callee that polls Err, one that asks for Done,
// and one that derives a context of its own (as net/http's Transport does).
func BenchmarkAttemptContext(b *testing.B) {
	const d = 10 * time.Second
	p, err := New(Config{Backend: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	derive := func(ctx context.Context) error {
		c, cancel := context.WithCancel(ctx)
		err := directDone(c)
		cancel()
		return err
	}
	callees := []struct {
		name string
		fn   func(context.Context) error
	}{{"Err", direct}, {"Done", directDone}, {"Derived", derive}}
	for _, callee := range callees {
		b.Run("WithTimeout/"+callee.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), d)
				_ = callee.fn(ctx)
				cancel()
			}
		})
		b.Run("attemptCtx/"+callee.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s := p.startAttempt(context.Background(), d)
				_ = callee.fn(s.ctx)
				p.release(s)
			}
		})
	}
}

// TestAttemptCtxAfterFunc covers the afterFuncer hook the stdlib uses for
// derived contexts: run once on cancel, not after stop, and a registration
// on a context already cancelled runs without calling back into the
// registrant's lock (propagateCancel holds the child's lock when it
// registers).
func TestAttemptCtxAfterFunc(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPolicy(t, Config{})
		s := p.startAttempt(context.Background(), time.Second)
		var ran [3]int
		stop0 := s.ctx.AfterFunc(func() { ran[0]++ })
		stop1 := s.ctx.AfterFunc(func() { ran[1]++ })
		if !stop1() {
			t.Error("stop before cancel = false, want true")
		}
		p.release(s)
		s.ctx.cancel(context.DeadlineExceeded) // a second cancel must not run anything again
		if stop0() {
			t.Error("stop after cancel = true, want false")
		}

		var mu sync.Mutex
		mu.Lock()
		stop2 := s.ctx.AfterFunc(func() { mu.Lock(); ran[2]++; mu.Unlock() })
		mu.Unlock()
		synctest.Wait()
		if stop2() {
			t.Error("stop of a registration on a cancelled context = true, want false")
		}
		if want := [3]int{1, 0, 1}; ran != want {
			t.Errorf("runs = %v, want %v", ran, want)
		}
	})
}
