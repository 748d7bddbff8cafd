package reconcile

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/store"
)

// timedPuts records when each key was put (the bubble's clock).
type timedPuts struct {
	backend.Backend
	mu   sync.Mutex // guards puts
	puts map[string][]time.Time
}

func (p *timedPuts) Put(ctx context.Context, t, k string, v doc.Version, body []byte, pre backend.Precondition) (string, error) {
	etag, err := p.Backend.Put(ctx, t, k, v, body, pre)
	if err == nil {
		p.mu.Lock()
		p.puts[k] = append(p.puts[k], time.Now())
		p.mu.Unlock()
	}
	return etag, err
}

func (p *timedPuts) of(key string) []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.puts[key]...)
}

const window = 50 * time.Millisecond

// runCoalescing starts Run on an engine over s and b with the window; the
// engine stops at the test's end (newEngine's cleanup).
func runCoalescing(t *testing.T, s *store.Store, b backend.Backend, mod func(*Config)) *Engine {
	t.Helper()
	e := newEngine(t, s, b, func(c *Config) {
		c.CoalesceWindow = window
		if mod != nil {
			mod(c)
		}
	})
	go e.Run(bg)
	return e
}

// write stores body under key and tells e, as the node's change feed does.
func write(t *testing.T, s *store.Store, e *Engine, key, body string) store.Record {
	t.Helper()
	rec := put(t, s, key, body)
	e.Changed(tenant)
	return rec
}

// TestCoalesceHotKey: one key rewritten 1,000 times a second for a second
// is uploaded at most once a window (20 a second, and the first at
// once), ends at its latest version, and the replication lag never
// exceeds the window (plus the time between two writes).
func TestCoalesceHotKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openStore(t, "a")
		b := &timedPuts{Backend: mem.New("b"), puts: map[string][]time.Time{}}
		e := runCoalescing(t, s, b, nil)
		var last store.Record
		worst := time.Duration(0)
		for i := range 1000 {
			last = write(t, s, e, "hot", fmt.Sprintf(`{"i":%d}`, i))
			time.Sleep(time.Millisecond)
			synctest.Wait()
			worst = max(worst, e.ReplicationLag())
		}
		time.Sleep(2 * window)
		synctest.Wait()
		puts := b.of("hot")
		if len(puts) > 1+int(time.Second/window)+1 {
			t.Errorf("%d uploads of a key rewritten 1,000 times in a second, want at most %d", len(puts), 2+int(time.Second/window))
		}
		for i := 1; i < len(puts); i++ {
			if d := puts[i].Sub(puts[i-1]); d < window {
				t.Errorf("uploads %d and %d %v apart, want at least the window %v", i-1, i, d, window)
			}
		}
		if r, _ := remoteState(t, b, "hot"); r.id != last.Version.ID() {
			t.Errorf("backend holds %v, want the latest version %v", r.id, last.Version.ID())
		}
		if worst > window+2*time.Millisecond {
			t.Errorf("replication lag reached %v, want at most the window %v (+ a write's spacing)", worst, window)
		}
	})
}

// TestCoalesceFirstChangeAtOnce: a change after a quiet window is uploaded
// at once: coalescing delays only what follows an upload within its window.
func TestCoalesceFirstChangeAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openStore(t, "a")
		b := &timedPuts{Backend: mem.New("b"), puts: map[string][]time.Time{}}
		e := runCoalescing(t, s, b, nil)
		start := time.Now()
		write(t, s, e, "k", `{"v":1}`)
		synctest.Wait()
		if puts := b.of("k"); len(puts) != 1 || !puts[0].Equal(start) {
			t.Fatalf("uploads %v, want one at once (%v)", puts, start)
		}
		time.Sleep(10 * time.Millisecond)
		rec := write(t, s, e, "k", `{"v":2}`) // within the window: waits for its end
		synctest.Wait()
		if puts := b.of("k"); len(puts) != 1 {
			t.Fatalf("a write within the window was uploaded before its end: %v", puts)
		}
		time.Sleep(window)
		synctest.Wait()
		puts := b.of("k")
		if len(puts) != 2 || puts[1].Sub(start) != window {
			t.Fatalf("uploads at %v after the first write, want a second at the window's end %v", durations(start, puts), window)
		}
		if r, _ := remoteState(t, b, "k"); r.id != rec.Version.ID() {
			t.Fatalf("backend holds %v, want %v", r.id, rec.Version.ID())
		}
	})
}

// TestCoalesceWriteDuringUpload: a write of a key that lands while the
// previous version of the key is being uploaded (after the decision,
// before the put) makes that upload stand down (the local version moved),
// and the new version is uploaded at the window's end.
func TestCoalesceWriteDuringUpload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openStore(t, "a")
		b := &timedPuts{Backend: mem.New("b"), puts: map[string][]time.Time{}}
		var e *Engine
		var during store.Record
		once := sync.Once{}
		e = runCoalescing(t, s, b, func(c *Config) {
			c.beforeApply = func(_, key string, d Decision) {
				if d.Action == Upload {
					once.Do(func() { during = write(t, s, e, key, `{"v":"during"}`) })
				}
			}
		})
		start := time.Now()
		write(t, s, e, "k", `{"v":"first"}`)
		synctest.Wait()
		if puts := b.of("k"); len(puts) != 0 {
			t.Fatalf("the first version was uploaded over a newer local one: %v", durations(start, puts))
		}
		// The write made during the drain waits for the window's end, and
		// the replication lag shows it waiting.
		time.Sleep(window / 2)
		synctest.Wait()
		if lag := e.ReplicationLag(); lag != window/2 {
			t.Fatalf("replication lag %v while a change waits since %v", lag, window/2)
		}
		time.Sleep(window / 2)
		synctest.Wait()
		puts := b.of("k")
		if len(puts) != 1 || puts[0].Sub(start) != window {
			t.Fatalf("uploads at %v, want one at the window's end %v", durations(start, puts), window)
		}
		if r, _ := remoteState(t, b, "k"); r.id != during.Version.ID() || r.body != `{"v":"during"}` {
			t.Fatalf("backend holds %+v, want the write made during the upload", r)
		}
		time.Sleep(time.Millisecond)
		if lag := e.ReplicationLag(); lag != 0 {
			t.Fatalf("replication lag %v once the last change is uploaded", lag)
		}
	})
}

// TestCoalescePropertyLastVersionWins: random interleavings of writes and
// deletes of a few keys, spaced by random (virtual) times around the
// window, with drains as Changed asks: once the writes stop and a window
// passes, the backend holds every key's latest local version, and no key
// was uploaded more than once a window.
func TestCoalescePropertyLastVersionWins(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 7))
				s := openStore(t, "a")
				b := &timedPuts{Backend: mem.New("b"), puts: map[string][]time.Time{}}
				var (
					e       *Engine
					hookMu  sync.Mutex  // guards hookRng: the hook runs on the uploader's goroutines
					stopped atomic.Bool // the writes are over: the hook writes no more
				)
				hookRng := rand.New(rand.NewPCG(seed, 8))
				e = runCoalescing(t, s, b, func(c *Config) {
					// Now and then a write lands between a decision and its put.
					c.beforeApply = func(_, key string, d Decision) {
						hookMu.Lock()
						n := hookRng.IntN(8000)
						hookMu.Unlock()
						if d.Action == Upload && n < 1000 && !stopped.Load() {
							write(t, s, e, key, fmt.Sprintf(`{"during":%d}`, n))
						}
					}
				})
				keys := []string{"a", "b", "c"}
				for i := range 300 {
					key := keys[rng.IntN(len(keys))]
					if l, ok := localState(t, s, key); ok && !l.tomb && rng.IntN(10) == 0 {
						del(t, s, key)
						e.Changed(tenant)
					} else {
						write(t, s, e, key, fmt.Sprintf(`{"i":%d}`, i))
					}
					time.Sleep(time.Duration(rng.IntN(int(window/time.Millisecond)*2)) * time.Millisecond / 4)
				}
				stopped.Store(true)
				time.Sleep(2 * window) // a hook's write made at the last drain is drained a window later
				synctest.Wait()
				for _, key := range keys {
					l, lok := localState(t, s, key)
					r, rok := remoteState(t, b, key)
					if lok != rok || l != r {
						t.Errorf("%s: local %+v (%v), backend %+v (%v)", key, l, lok, r, rok)
					}
					puts := b.of(key)
					for i := 1; i < len(puts); i++ {
						if d := puts[i].Sub(puts[i-1]); d < window {
							t.Errorf("%s: uploads %d and %d %v apart, want at least the window", key, i-1, i, d)
						}
					}
				}
			})
		})
	}
}

func durations(start time.Time, ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.Sub(start)
	}
	return out
}
