package reconcile

import (
	"context"
	"fmt"
	"math"

	"golang.org/x/time/rate"

	"github.com/cairnstore/cairn/internal/fault"
)

// DefaultConcurrency bounds one backend's concurrent calls when
// Limits.Concurrency is 0: twice the uploader's default width, so the
// uploader and a round can both make progress without either owning the
// backend.
const DefaultConcurrency = 2 * defaultUploadConcurrency

// defaultUploadConcurrency is Config.UploadConcurrency's default. An
// upload spends its time waiting for the backend's answer and a store
// commit, so the uploader's throughput is this width over that latency:
// at 8, a node on a loopback S3 server fell tens of seconds behind 1,000
// writes/s. At 32 the server's latency grew with the calls in flight and
// the uploads' commits slowed the node's own writes (docs/performance.md,
// "Replication between nodes").
const defaultUploadConcurrency = 16

// Limits bound the load the reconciler puts on one backend. Every backend
// call of an engine (the round's lists, reads and writes and the
// uploader's stats and writes alike) goes through them, so they hold for
// the backend as a whole, whichever path is busy.
type Limits struct {
	// Concurrency bounds the calls in flight at once; 0 means
	// DefaultConcurrency.
	Concurrency int
	// OpsPerSec bounds calls started per second (a token bucket with a
	// tenth of a second's burst); 0 means unlimited. A call retried by the
	// resilience policy takes one token, not one per attempt.
	OpsPerSec float64
	// BytesPerSec bounds document bytes sent and received per second; 0
	// means unlimited. A write waits before it is sent; a read is charged
	// after it arrives (its size is not known before), which delays the
	// next call instead.
	BytesPerSec float64
}

// Validate reports a negative or non-finite setting.
func (l Limits) Validate() error {
	bad := func(msg string) error {
		return fault.New(fault.Config, fault.Context{Op: "reconcile.limits"}, msg)
	}
	switch {
	case l.Concurrency < 0:
		return bad(fmt.Sprintf("concurrency %d: want 0 (default) or more", l.Concurrency))
	case l.OpsPerSec < 0 || math.IsNaN(l.OpsPerSec) || math.IsInf(l.OpsPerSec, 0):
		return bad(fmt.Sprintf("ops/s %v: want 0 (unlimited) or a positive number", l.OpsPerSec))
	case l.BytesPerSec < 0 || math.IsNaN(l.BytesPerSec) || math.IsInf(l.BytesPerSec, 0):
		return bad(fmt.Sprintf("bytes/s %v: want 0 (unlimited) or a positive number", l.BytesPerSec))
	}
	return nil
}

// limiter enforces Limits. Waiting on it honours the caller's context.
type limiter struct {
	sem   chan struct{} // one token per call in flight
	ops   *rate.Limiter // nil: unlimited
	bytes *rate.Limiter // nil: unlimited
}

// minByteBurst keeps a low bytes/s limit from charging a typical document
// in many small waits.
const minByteBurst = 64 << 10

func newLimiter(l Limits) *limiter {
	if l.Concurrency == 0 {
		l.Concurrency = DefaultConcurrency
	}
	lim := &limiter{sem: make(chan struct{}, l.Concurrency)}
	if l.OpsPerSec > 0 {
		lim.ops = rate.NewLimiter(rate.Limit(l.OpsPerSec), max(1, int(l.OpsPerSec/10)))
	}
	if l.BytesPerSec > 0 {
		lim.bytes = rate.NewLimiter(rate.Limit(l.BytesPerSec), max(minByteBurst, int(l.BytesPerSec/10)))
	}
	return lim
}

// acquire waits for a call slot and an ops token. The slot is held until
// release; the ops token is spent.
func (l *limiter) acquire(ctx context.Context) (release func(), err error) {
	if l.ops != nil {
		if err := l.ops.Wait(ctx); err != nil {
			return nil, waitErr(ctx, err)
		}
	}
	select {
	case l.sem <- struct{}{}:
		return func() { <-l.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// charge waits until n bytes may pass, in bursts (WaitN refuses more than
// the burst at once).
func (l *limiter) charge(ctx context.Context, n int) error {
	if l.bytes == nil {
		return nil
	}
	for b := l.bytes.Burst(); n > 0; n -= b {
		if err := l.bytes.WaitN(ctx, min(n, b)); err != nil {
			return waitErr(ctx, err)
		}
	}
	return nil
}

// waitErr is ctx's error, or, when rate refused because the wait would
// pass ctx's deadline (its own error, before the deadline), a
// DeadlineExceeded that says so: either way the caller sees a context
// error, never a backend fault.
func waitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
}
