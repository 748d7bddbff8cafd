package reconcile

import (
	"context"
	"sync"
)

// fanOut runs tasks with at most n at once and keeps the first error.
// After an error it starts no more tasks, but it never cancels the ones
// running: each of them ends with its own outcome.
//
// That is for the circuit breaker. failsafe-go records a call it is not
// told failed as a success, so a call cancelled because a sibling failed
// is one. Cancelling the siblings of a failed call would reset, in a
// closed breaker, the run of failures that opens it; and in a half-open
// one, where a sibling beyond the probes' permits is refused at once, it
// would end the probes in flight: counted as successes they close the
// breaker against a backend still down, counted as failures they open it
// again against one that is back, round after round.
type fanOut struct {
	sem chan struct{}
	wg  sync.WaitGroup

	mu      sync.Mutex
	first   error // guarded by mu: the first task's error
	stopped error // guarded by mu: ctx's, when it ended while work was handed out
}

func newFanOut(n int) *fanOut { return &fanOut{sem: make(chan struct{}, max(1, n))} }

// Go waits for a slot and runs task in its own goroutine. It returns false,
// without running task, once a task has failed or ctx has ended: the
// caller stops handing out work.
func (f *fanOut) Go(ctx context.Context, task func() error) bool {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		f.stop(ctx)
		return false
	}
	if ctx.Err() != nil {
		f.stop(ctx)
	}
	if f.err() != nil {
		<-f.sem
		return false
	}
	f.wg.Go(func() {
		defer func() { <-f.sem }()
		if err := task(); err != nil {
			f.mu.Lock()
			if f.first == nil {
				f.first = err
			}
			f.mu.Unlock()
		}
	})
	return true
}

func (f *fanOut) stop(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = context.Cause(ctx)
}

// err is the first task's error, else ctx's if Go met its end.
func (f *fanOut) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.first != nil {
		return f.first
	}
	return f.stopped
}

// Wait waits for the tasks started and returns err.
func (f *fanOut) Wait() error {
	f.wg.Wait()
	return f.err()
}
