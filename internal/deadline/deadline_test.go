package deadline_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/cairnstore/cairn/internal/deadline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// advance moves a synctest bubble's fake clock forward by d: inside a
// bubble time.Sleep waits for nothing real.
func advance(d time.Duration) { time.Sleep(d) }

type otherKey struct{}

// A carried deadline arms nothing: the context has no standard deadline
// and Done is its parent's; Err reports it once it has passed.
func TestErr(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := deadline.With(context.Background(), time.Now().Add(time.Second), false)
		if _, ok := ctx.Deadline(); ok {
			t.Fatal("With set a standard deadline")
		}
		if ctx.Done() != nil {
			t.Fatal("With made a Done channel")
		}
		if at, ok := deadline.At(ctx); !ok || !at.Equal(time.Now().Add(time.Second)) {
			t.Fatalf("At = %v, %v", at, ok)
		}
		if err := deadline.Err(ctx); err != nil {
			t.Fatalf("Err before the deadline: %v", err)
		}
		advance(time.Second)
		if err := deadline.Err(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err at the deadline: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatal("the carried deadline leaked into ctx.Err")
		}
	})

	// The parent's end comes first.
	parent, cancel := context.WithCancel(context.Background())
	ctx := deadline.With(parent, time.Now().Add(time.Hour), false)
	cancel()
	if err := deadline.Err(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after the parent's cancel: %v", err)
	}
	if err := deadline.Err(context.Background()); err != nil {
		t.Fatalf("Err of a context without a deadline: %v", err)
	}
}

// Bound wakes a waiter at the carried deadline.
func TestBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx := deadline.With(context.Background(), start.Add(time.Second), false)
		b, cancel := deadline.Bound(ctx)
		defer cancel()
		if d, ok := b.Deadline(); !ok || !d.Equal(start.Add(time.Second)) {
			t.Fatalf("Deadline() = %v, %v", d, ok)
		}
		<-b.Done()
		if got := time.Since(start); got != time.Second {
			t.Fatalf("woken after %v, want 1s", got)
		}
		if !errors.Is(b.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v", b.Err())
		}
	})
	ctx := context.WithValue(context.Background(), otherKey{}, 1)
	b, cancel := deadline.Bound(ctx)
	cancel()
	if b != ctx {
		t.Fatal("Bound without a carried deadline made a new context")
	}
}

func TestWithout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := deadline.With(context.WithValue(context.Background(), otherKey{}, 1), time.Now().Add(time.Second), true)
		w := deadline.Without(ctx)
		advance(time.Hour)
		if err := deadline.Err(w); err != nil {
			t.Fatalf("Err without the deadline: %v", err)
		}
		if _, ok := deadline.At(w); ok {
			t.Fatal("At found the dropped deadline")
		}
		if w.Value(otherKey{}) != 1 {
			t.Fatal("Without dropped another value")
		}
		if deadline.ClientExceeded(w) {
			t.Fatal("ClientExceeded without the deadline")
		}
	})
}

// ClientExceeded is true only when the client's own deadline ended the
// context.
func TestClientExceeded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client bool
		parent time.Duration // a sooner deadline of the parent's, if not 0
		sooner time.Duration // a deadline of a context derived from it, if not 0
		wait   time.Duration
		want   bool
	}{
		{name: "client's, passed", client: true, wait: time.Second, want: true},
		{name: "client's, in time", client: true, wait: time.Second / 2, want: false},
		{name: "the server's, passed", wait: time.Second, want: false},
		{name: "the parent's sooner", client: true, parent: time.Second / 2, wait: time.Second, want: false},
		{name: "a derived sooner", client: true, sooner: time.Second / 2, wait: time.Second / 2, want: false},
	} {
		synctest.Test(t, func(t *testing.T) {
			parent := context.Background()
			if tc.parent != 0 {
				var cancel context.CancelFunc
				parent, cancel = context.WithTimeout(parent, tc.parent)
				defer cancel()
			}
			ctx := deadline.With(parent, time.Now().Add(time.Second), tc.client)
			if tc.sooner != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.sooner)
				defer cancel()
			}
			advance(tc.wait)
			synctest.Wait()
			if got := deadline.ClientExceeded(ctx); got != tc.want {
				t.Errorf("%s: ClientExceeded = %v, want %v (Err %v)", tc.name, got, tc.want, deadline.Err(ctx))
			}
		})
	}
}
