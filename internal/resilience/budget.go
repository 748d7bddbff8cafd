package resilience

import (
	"sync"
	"time"
)

// budgetBuckets is how finely the budget window slides: the window is cut
// into this many buckets and a whole bucket expires at once, so the window
// is accurate to within Window/budgetBuckets.
const budgetBuckets = 10

// Budget is a retry budget over a sliding window: over any window, retries
// may be at most share × first attempts + minRetries. It is what keeps a
// failing backend from being hit by (1 + MaxAttempts) × the offered load:
// once the share is spent, a failed call returns its error at once.
//
// failsafe-go has a budget too, but it bounds the share of retries among the
// executions in flight at one instant, not over a window of time, so a
// steady trickle of failing calls could still retry every one of them. The
// bound here is over a window (as in gRPC retry throttling and Finagle's
// RetryBudget), so this one is ours; it plugs into failsafe's retry
// policy through its public AbortIf hook.
//
// Budget is safe for concurrent use.
type Budget struct {
	share      float64
	minRetries float64
	width      time.Duration // of one bucket
	now        func() time.Time

	mu      sync.Mutex // guards the fields below
	buckets [budgetBuckets]budgetBucket
	epoch   int64 // the bucket epoch of the newest bucket
	firsts  int64 // sum of buckets[*].firsts
	retries int64 // sum of buckets[*].retries
}

type budgetBucket struct{ firsts, retries int64 }

// NewBudget returns a budget allowing retries ≤ share × first attempts +
// minRetries over the window. now is the clock (time.Now if nil).
func NewBudget(share float64, minRetries int, window time.Duration, now func() time.Time) *Budget {
	if now == nil {
		now = time.Now
	}
	b := &Budget{
		share:      share,
		minRetries: float64(minRetries),
		width:      max(window/budgetBuckets, 1),
		now:        now,
	}
	b.epoch = b.now().UnixNano() / int64(b.width)
	return b
}

// advanceLocked expires the buckets older than the window.
func (b *Budget) advanceLocked() *budgetBucket {
	e := b.now().UnixNano() / int64(b.width)
	for i := 0; e > b.epoch && i < budgetBuckets; i++ {
		b.epoch++
		old := &b.buckets[b.epoch%budgetBuckets]
		b.firsts -= old.firsts
		b.retries -= old.retries
		*old = budgetBucket{}
	}
	b.epoch = max(b.epoch, e) // after a long idle gap every bucket is already empty
	return &b.buckets[b.epoch%budgetBuckets]
}

// RecordFirst counts a first attempt (one that reached the backend).
func (b *Budget) RecordFirst() {
	b.mu.Lock()
	b.advanceLocked().firsts++
	b.firsts++
	b.mu.Unlock()
}

// TryRetry takes one retry from the budget, reporting false when it is
// spent.
func (b *Budget) TryRetry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.advanceLocked()
	if float64(b.retries+1) > b.share*float64(b.firsts)+b.minRetries {
		return false
	}
	cur.retries++
	b.retries++
	return true
}

// refund gives back a retry taken by TryRetry that did not happen (the
// retry policy asks the budget before it knows the attempts are exhausted).
func (b *Budget) refund() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advanceLocked()
	// The retry may have been taken in an earlier bucket of the window:
	// give it back to the newest bucket that holds one, so the window total
	// and the buckets stay equal.
	for age := int64(0); age < budgetBuckets; age++ {
		if bk := &b.buckets[(b.epoch-age)%budgetBuckets]; bk.retries > 0 {
			bk.retries--
			b.retries--
			return
		}
	}
}

// Counts returns the first attempts and retries in the current window.
func (b *Budget) Counts() (firsts, retries int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advanceLocked()
	return b.firsts, b.retries
}
