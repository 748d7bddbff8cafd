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

// Settle waits until every key of tenant held when it is called has been
// released (keys taken later are not waited for). It returns ctx's error
// if ctx ends first. A pack writer calls it so that every write announced
// before it read the feed's cursors is committed with its base before it
// lists the store.
func (f *InFlight) Settle(ctx context.Context, tenant string) error {
	f.mu.Lock()
	var held []chan struct{}
	for k, ch := range f.keys {
		if k.tenant == tenant {
			held = append(held, ch)
		}
	}
	f.mu.Unlock()
	for _, ch := range held {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
