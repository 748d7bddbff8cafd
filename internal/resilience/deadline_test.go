package resilience

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnstore/cairn/internal/deadline"
)

// requestDeadline returns Deadlines{Default: d}.Context of a request whose
// context is parent.
func requestDeadline(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	r := httptest.NewRequest("PUT", "/", nil).WithContext(parent)
	return Deadlines{Default: d}.Context(r)
}

// The request context behaves as context.WithTimeout's whether or not
// anyone asked for Done before the deadline.
func TestRequestDeadlineExpires(t *testing.T) {
	for _, armEarly := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := requestDeadline(context.Background(), time.Second)
			defer cancel()
			if dl, ok := ctx.Deadline(); !ok || dl != time.Now().Add(time.Second) {
				t.Fatalf("Deadline() = %v, %v", dl, ok)
			}
			var done <-chan struct{}
			if armEarly {
				done = ctx.Done()
			}
			if err := ctx.Err(); err != nil {
				t.Fatalf("Err before the deadline: %v", err)
			}
			advance(time.Second)
			synctest.Wait()
			if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Err after the deadline: %v", err)
			}
			if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Cause after the deadline: %v", err)
			}
			if done == nil {
				done = ctx.Done()
			}
			if !isClosed(done) {
				t.Fatal("Done is not closed after the deadline")
			}
		})
	}
}

func TestRequestDeadlineFollowsParent(t *testing.T) {
	for _, armEarly := range []bool{false, true} {
		parent, stop := context.WithCancelCause(context.Background())
		ctx, cancel := requestDeadline(parent, time.Hour)
		if armEarly {
			ctx.Done()
		}
		why := errors.New("client went away")
		stop(why)
		if err := ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("armed %v: Err after the parent's cancel: %v", armEarly, err)
		}
		if err := context.Cause(ctx); err != why {
			t.Fatalf("armed %v: Cause = %v, want the parent's", armEarly, err)
		}
		if !isClosed(ctx.Done()) {
			t.Fatalf("armed %v: Done not closed", armEarly)
		}
		cancel()
	}

	// A sooner deadline on the parent is the one reported.
	parent, stop := context.WithTimeout(context.Background(), time.Millisecond)
	defer stop()
	want, _ := parent.Deadline()
	ctx, cancel := requestDeadline(parent, time.Hour)
	defer cancel()
	if got, _ := ctx.Deadline(); !got.Equal(want) {
		t.Fatalf("Deadline() = %v, want the parent's %v", got, want)
	}
}

func TestRequestDeadlineCancel(t *testing.T) {
	// Cancelled before anyone asked for Done: a closed Done.
	ctx, cancel := requestDeadline(context.Background(), time.Hour)
	cancel()
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after cancel: %v", err)
	}
	if !isClosed(ctx.Done()) {
		t.Fatal("Done not closed after cancel")
	}

	// A context derived from it is cancelled with it.
	ctx, cancel = requestDeadline(context.Background(), time.Hour)
	child, stopChild := context.WithCancel(ctx)
	defer stopChild()
	cancel()
	if !isClosed(child.Done()) || !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("derived context not cancelled: %v", child.Err())
	}

	// Done racing with cancel: whichever runs first, the context ends
	// cancelled, with Done closed (run under -race).
	for range 1000 {
		ctx, cancel := requestDeadline(context.Background(), time.Hour)
		var wg sync.WaitGroup
		var done <-chan struct{}
		wg.Go(func() { done = ctx.Done() })
		wg.Go(cancel)
		wg.Wait()
		if !isClosed(done) || !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("Done racing cancel: closed %v, Err %v", isClosed(done), ctx.Err())
		}
	}
}

// Once Err has reported an error it reports the same one, whatever
// happens next (cancel, the parent's end, Done arming the context), as
// context.WithTimeout's does.
func TestRequestDeadlineErrSticks(t *testing.T) {
	type step func(ctx context.Context, cancel context.CancelFunc, stopParent func())
	var (
		cancelIt  step = func(_ context.Context, cancel context.CancelFunc, _ func()) { cancel() }
		endParent step = func(_ context.Context, _ context.CancelFunc, stop func()) { stop() }
		arm       step = func(ctx context.Context, _ context.CancelFunc, _ func()) {
			if !isClosed(ctx.Done()) {
				t.Error("Done not closed after Err reported an error")
			}
		}
		// The deadline's timer fires in a goroutine of its own: wait for it.
		expire step = func(context.Context, context.CancelFunc, func()) { advance(time.Second); synctest.Wait() }
	)
	for _, tc := range []struct {
		name  string
		first step
		want  error
		then  []step
	}{
		{"deadline, then cancel and Done", expire, context.DeadlineExceeded, []step{cancelIt, arm}},
		{"deadline, then the parent ends", expire, context.DeadlineExceeded, []step{endParent, arm}},
		{"cancel, then the deadline", cancelIt, context.Canceled, []step{expire, arm}},
		{"the parent ends, then the deadline and cancel", endParent, context.Canceled, []step{expire, cancelIt, arm}},
	} {
		synctest.Test(t, func(t *testing.T) {
			parent, stop := context.WithCancel(context.Background())
			defer stop()
			ctx, cancel := requestDeadline(parent, time.Second)
			defer cancel()
			tc.first(ctx, cancel, stop)
			if err := ctx.Err(); !errors.Is(err, tc.want) {
				t.Fatalf("%s: Err = %v, want %v", tc.name, err, tc.want)
			}
			for i, s := range tc.then {
				s(ctx, cancel, stop)
				if err := ctx.Err(); !errors.Is(err, tc.want) {
					t.Fatalf("%s: after step %d Err = %v, want %v still", tc.name, i+1, err, tc.want)
				}
			}
		})
	}

	// A parent with a sooner deadline ends it with DeadlineExceeded, and
	// so does the armed context.
	synctest.Test(t, func(t *testing.T) {
		parent, stop := context.WithTimeout(context.Background(), time.Millisecond)
		defer stop()
		ctx, cancel := requestDeadline(parent, time.Hour)
		defer cancel()
		advance(time.Second)
		synctest.Wait()
		if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err = %v, want the parent's DeadlineExceeded", err)
		}
		if !isClosed(ctx.Done()) || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("armed: Err = %v", ctx.Err())
		}
	})
}

// Carry arms no timer: the deadline travels as a value (package deadline)
// that the store checks, the one Context would have set.
func TestRequestDeadlineCarried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		d      Deadlines
		header string
		want   time.Duration
		client bool
	}{
		{name: "default", d: Deadlines{Default: time.Second}, want: time.Second},
		{name: "client's", d: Deadlines{Default: time.Second, Max: time.Minute}, header: "10s", want: 10 * time.Second, client: true},
		{name: "clamped", d: Deadlines{Default: time.Second}, header: "10s", want: time.Second},
	} {
		synctest.Test(t, func(t *testing.T) {
			r := httptest.NewRequest("PUT", "/", nil)
			if tc.header != "" {
				r.Header.Set(TimeoutHeader, tc.header)
			}
			ctx, cancel := tc.d.Carry(r)
			defer cancel()
			if _, ok := ctx.Deadline(); ok || ctx.Done() != nil {
				t.Fatalf("%s: Carry armed a standard deadline", tc.name)
			}
			if at, ok := deadline.At(ctx); !ok || !at.Equal(time.Now().Add(tc.want)) {
				t.Fatalf("%s: carried deadline %v, %v; want in %v", tc.name, at, ok, tc.want)
			}
			advance(tc.want)
			if err := deadline.Err(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: Err after the deadline: %v", tc.name, err)
			}
			if got := ClientDeadlineExceeded(ctx); got != tc.client {
				t.Fatalf("%s: ClientDeadlineExceeded = %v, want %v", tc.name, got, tc.client)
			}
		})
	}
}
