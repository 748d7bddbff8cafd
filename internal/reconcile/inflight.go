package reconcile

import (
	"context"
	"sync"
)

// InFlight is the set of keys being replicated. The reconciler and the
// uploader take a key before deciding on it and release it after applying,
// so the two never act on one key at once; the second waits. Share one
// InFlight among the engines of a store whose rounds must not overlap on a
// key (engines for different backends need not share one).
type InFlight struct {
	mu   sync.Mutex                    // guards keys
	keys map[inflightKey]chan struct{} // closed on release
}

type inflightKey struct{ tenant, key string }

// NewInFlight returns an empty set.
func NewInFlight() *InFlight { return &InFlight{keys: map[inflightKey]chan struct{}{}} }

// Acquire takes (tenant, key), waiting while another holder has it. It
// returns ctx's error if ctx ends first. Release with the returned func.
func (f *InFlight) Acquire(ctx context.Context, tenant, key string) (release func(), err error) {
	k := inflightKey{tenant, key}
	for {
		f.mu.Lock()
		held, busy := f.keys[k]
		if !busy {
			ch := make(chan struct{})
			f.keys[k] = ch
			f.mu.Unlock()
			return func() {
				f.mu.Lock()
				delete(f.keys, k)
				f.mu.Unlock()
				close(ch)
			}, nil
		}
		f.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Len returns the number of keys held.
func (f *InFlight) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.keys)
}
