package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// The filter never forgets a key, and at its capacity answers "maybe" for
// few keys it was not given.
func TestKeyFilterBits(t *testing.T) {
	const n = 100_000
	f := newFilterSet(n, filterBytes(n))
	if f.newest().capacity != n {
		t.Fatalf("capacity %d, want %d", f.newest().capacity, n)
	}
	for i := range n {
		f.add(fmt.Sprintf("t\x00key-%d", i))
	}
	for i := range n {
		if ok := fmt.Sprintf("t\x00key-%d", i); !f.mayHave(ok) || !f.mayHaveRow([]byte("d"+ok)) {
			t.Fatalf("false negative for %q", ok)
		}
	}
	fp := 0
	for i := range n {
		if f.mayHave(fmt.Sprintf("t\x00other-%d", i)) {
			fp++
		}
	}
	// A blocked filter at 10 bits per key with 7 probes measures ~1-2%.
	if rate := float64(fp) / n; rate > 0.03 {
		t.Fatalf("false positive rate %.4f at capacity, want ≤ 0.03", rate)
	}
	t.Logf("false positive rate at capacity: %.4f", float64(fp)/n)
}

// filterEvents counts the filter's hook calls and lets a test hold it at
// "activated" (between the committer starting to add keys to a new filter
// and the scan of the rows).
type filterEvents struct {
	mu     sync.Mutex
	counts map[string]int
	hold   chan struct{} // if non-nil, "activated" waits for it to close
	start  chan struct{} // if non-nil, "starting" waits for it to close
	seen   chan string   // every event, if non-nil (buffered; dropped when full)
}

func (e *filterEvents) hook(stage string) {
	e.mu.Lock()
	if e.counts == nil {
		e.counts = map[string]int{}
	}
	e.counts[stage]++
	hold, start := e.hold, e.start
	e.mu.Unlock()
	if e.seen != nil {
		select {
		case e.seen <- stage:
		default:
		}
	}
	if stage == "activated" && hold != nil {
		<-hold
	}
	if stage == "starting" && start != nil {
		<-start
	}
}

func (e *filterEvents) count(stage string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[stage]
}

func waitEvent(t *testing.T, seen chan string, want string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case got := <-seen:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("the filter never reached %q", want)
		}
	}
}

// A published filter answers for the rows that were there when the store
// opened and for every row written since, including those written while it
// was being built; and lookups of absent keys stop at it.
func TestKeyFilterBuildWindow(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{KeyFilterBytes: -1})
	prev := map[string]Record{}
	for i := range 500 {
		k := fmt.Sprintf("old-%d", i)
		prev[k] = mustPut(t, s, "t", k, "{}")
	}
	if s.filter.Load() != nil {
		t.Fatal("a filter with KeyFilterBytes < 0")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	ev := &filterEvents{hold: make(chan struct{}), seen: make(chan string, 16)}
	s = openT(t, dir, Options{filterHook: ev.hook, maxOverlay: 16})
	waitEvent(t, ev.seen, "activated")
	// Held after activation, before the scan: these writes reach the new
	// filter only through the committer.
	for i := range 100 {
		k := fmt.Sprintf("new-%d", i)
		rec := mustPut(t, s, "t", k, "{}")
		if !rec.Created {
			t.Fatalf("%s: not created", k)
		}
		prev[k] = rec
	}
	for i := range 100 {
		k := fmt.Sprintf("old-%d", i)
		rec := mustPut(t, s, "t", k, `{"v":2}`)
		checkParent(t, k, prev[k], rec)
		prev[k] = rec
	}
	close(ev.hold)
	waitEvent(t, ev.seen, "published")
	f := s.filter.Load()
	if f == nil {
		t.Fatal("no filter published")
	}
	// 500 rows scanned, 100 created; those created in the window are also
	// scanned, and counted twice (the count errs high, never low).
	if got := f.keys(); got < 600 || got > 700 {
		t.Errorf("filter counts %d keys, want 600–700", got)
	}
	for k := range prev {
		if !f.mayHave("t\x00" + k) {
			t.Fatalf("published filter misses %s", k)
		}
		rec := mustPut(t, s, "t", k, `{"v":3}`)
		checkParent(t, k, prev[k], rec)
	}
	absent := 0
	for i := range 1000 {
		if c, err := s.readCurrent(docKey("t", fmt.Sprintf("absent-%d", i))); err != nil || c.exists {
			t.Fatalf("readCurrent(absent-%d) = %+v, %v", i, c, err)
		}
		if !f.mayHave(fmt.Sprintf("t\x00absent-%d", i)) {
			absent++
		}
	}
	if absent < 950 {
		t.Errorf("the filter ruled out %d of 1000 absent keys, want ≥ 950", absent)
	}
}

// checkParent fails unless rec was derived from prev: the chain of versions
// a false negative of the filter would break (the write would start a new
// history with no parent).
func checkParent(t *testing.T, key string, prev, rec Record) {
	t.Helper()
	if rec.Version.Parent != prev.Version.ID() {
		t.Fatalf("%s: version %s has parent %s, want %s (the previous version)", key,
			rec.Version.ID(), rec.Version.Parent, prev.Version.ID())
	}
}

// Writers create, update and delete keys while the filter grows stage after
// stage (a tiny first stage), across a reopen (whose build scans the rows
// while they write): every write must see its key's previous version, and
// Created must be exact.
func TestKeyFilterUnderWrites(t *testing.T) {
	dir := t.TempDir()
	const writers, keysPer, ops = 8, 300, 1500
	prev := make([]map[string]Record, writers)
	for w := range prev {
		prev[w] = map[string]Record{}
	}
	for round := range 4 { // later rounds reopen over the earlier rounds' rows
		// From the second round on, the filter is built while the writers
		// write: it starts once they are under way, so that the committer's
		// overlay holds staged writes when it starts adding to the filter.
		ev := &filterEvents{}
		var started sync.Once
		release := func() {}
		if round > 0 {
			ev.start = make(chan struct{})
			release = func() { started.Do(func() { close(ev.start) }) }
		}
		// An overlay of 16 entries is pruned all the time, and the recent
		// states hold one key a shard, so that most lookups go past both
		// to the filter and Pebble.
		s := openT(t, dir, Options{filterMin: 64, maxOverlay: 16, recentKeys: recentShards, filterHook: ev.hook})
		var wg sync.WaitGroup
		var failed atomic.Bool
		for w := range writers {
			wg.Go(func() {
				defer release()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for i := range ops {
					if failed.Load() {
						return
					}
					if w == 0 && i == 100 {
						release()
					}
					if err := filterOp(s, rng, w, keysPer, i, prev[w]); err != nil {
						failed.Store(true)
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if ev.count("published") != 1 || round == 0 && ev.count("grown") < 2 {
			t.Errorf("round %d: the filter was published %d times and grew %d times, want once and (round 0) twice or more",
				round, ev.count("published"), ev.count("grown"))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// filterOp is one random write by writer w to one of its keys, checked
// against its model of the key (prev).
func filterOp(s *Store, rng *rand.Rand, w, keysPer, i int, prev map[string]Record) error {
	key := fmt.Sprintf("w%d-%d", w, rng.IntN(keysPer))
	p, had := prev[key]
	live := had && !p.Version.Tombstone
	var rec Record
	var err error
	switch n := rng.IntN(10); {
	case n == 0 && live:
		rec, err = s.Delete(bg, "t", key, doc.Precondition{})
	case n == 1:
		var recs []Record
		recs, err = s.PutBatch(bg, "t", []Item{{Key: key, Body: []byte(`{"batch":true}`)}})
		if err == nil {
			rec = recs[0]
		}
	default:
		rec, err = s.Put(bg, "t", key, fmt.Appendf(nil, `{"i":%d}`, i), doc.Precondition{})
	}
	if err != nil {
		return fmt.Errorf("write %d to %s: %w", i, key, err)
	}
	if had && rec.Version.Parent != p.Version.ID() {
		return fmt.Errorf("%s: version has parent %s, want the previous version %s", key, rec.Version.Parent, p.Version.ID())
	}
	if !had && !rec.Version.Parent.IsZero() {
		return fmt.Errorf("%s: first version has parent %s", key, rec.Version.Parent)
	}
	if !rec.Version.Tombstone && rec.Created == live {
		return fmt.Errorf("%s: Created = %v, but the key was live: %v", key, rec.Created, live)
	}
	prev[key] = rec
	return nil
}

// Past twice the capacity of the largest filter allowed, the filter is
// dropped and every lookup goes to Pebble; writes stay right.
func TestKeyFilterDroppedAtCap(t *testing.T) {
	ev := &filterEvents{seen: make(chan string, 16)}
	// 64 bytes: capacity 51 keys, served up to 102.
	s := openT(t, "", Options{KeyFilterBytes: 64, filterHook: ev.hook, maxOverlay: 16})
	waitEvent(t, ev.seen, "published")
	prev := map[string]Record{}
	for i := range 150 {
		k := fmt.Sprintf("k%d", i)
		prev[k] = mustPut(t, s, "t", k, "{}")
	}
	waitEvent(t, ev.seen, "dropped")
	if s.filter.Load() != nil {
		t.Fatal("filter still published after being dropped")
	}
	for k, p := range prev {
		checkParent(t, k, p, mustPut(t, s, "t", k, `{"v":2}`))
	}
}

// Close stops the builder even while it is held mid-build.
func TestKeyFilterCloseDuringBuild(t *testing.T) {
	ev := &filterEvents{hold: make(chan struct{}), seen: make(chan string, 16)}
	s, err := Open(t.TempDir(), Options{filterHook: ev.hook})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev.seen, "activated")
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	time.Sleep(50 * time.Millisecond) // Close now waits for the builder
	close(ev.hold)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := s.Put(bg, "t", "k", []byte("{}"), doc.Precondition{}); !errors.Is(err, ErrClosed) && fault.ClassOf(err) != fault.Transient {
		t.Fatalf("Put after Close: %v", err)
	}
}

// Filters whose bits live outside the heap are unmapped once unreachable,
// and never while reachable: many come and go across collections while one
// stays in use.
func TestKeyFilterFreed(t *testing.T) {
	kept := newFilterSet(1<<12, filterBytes(1<<12))
	kept.add("t\x00kept")
	before := filtersFreed.Load()
	for i := range 200 {
		f := newFilterSet(1<<16, filterBytes(1<<16))
		f.add(fmt.Sprint("t\x00", i))
		if !f.mayHave(fmt.Sprint("t\x00", i)) {
			t.Fatal("false negative")
		}
		if i%20 == 0 {
			runtime.GC()
		}
	}
	// Cleanups run on their own goroutine after a collection: wait for
	// most of the 200 (a few may still be reachable from a stack).
	for deadline := time.Now().Add(10 * time.Second); filtersFreed.Load()-before < 150; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 200 unreachable filters freed", filtersFreed.Load()-before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if !kept.mayHave("t\x00kept") {
		t.Fatal("a reachable filter lost its bits")
	}
}

// keys is how many keys the set's stages were given.
func (fs *filterSet) keys() int64 {
	var n int64
	for _, f := range fs.stages {
		n += f.keys.Load()
	}
	return n
}

// Stages double until the budget is spent; the newest then takes twice its
// capacity, and the set is dropped after that.
func TestFilterSetGrowth(t *testing.T) {
	fs := newFilterSet(1000, 4096)
	caps := []int64{fs.newest().capacity}
	for {
		next := fs.grown()
		if next == nil {
			break
		}
		if next.stages[0] != fs.stages[0] || len(next.stages) != len(fs.stages)+1 {
			t.Fatal("a grown set must keep its stages")
		}
		fs = next
		caps = append(caps, fs.newest().capacity)
	}
	if fmt.Sprint(caps) != "[1000 2000]" || fs.limit != 4000 {
		t.Fatalf("capacities %v, last limit %d; want [1000 2000] and 4000 within 4096 bytes", caps, fs.limit)
	}
	var used int64
	for _, f := range fs.stages {
		used += int64(len(f.words)) * 8
	}
	if used > 4096 {
		t.Fatalf("stages use %d bytes of a 4096-byte budget", used)
	}
	if newFilterSet(1000, 32) != nil {
		t.Fatal("a set in a budget too small for one block")
	}
}
