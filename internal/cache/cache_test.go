package cache

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"
)

// newTest returns a single-shard cache (deterministic eviction) closed at
// the end of the test, with the periodic compactor disabled.
func newTest(t *testing.T, maxBytes int64, h hooks) *Cache {
	t.Helper()
	c := newCache(Options{MaxBytes: maxBytes, Shards: 1, CompactInterval: -1}, h)
	t.Cleanup(func() { c.Close() })
	return c
}

func ent(seq uint64, body string) *Entry {
	return &Entry{Seq: seq, ETag: fmt.Sprint(seq), Body: []byte(body)}
}

func tomb(seq uint64) *Entry { return &Entry{Seq: seq, Tombstone: true} }

// checkInvariants verifies every shard's bookkeeping: map, ring, counts and
// bytes agree, and the budget holds.
func checkInvariants(t *testing.T, c *Cache) {
	t.Helper()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		if s.side.Load() != nil {
			t.Errorf("shard %d: side table left behind", i)
		}
		tab := s.tab.Load()
		ring := ringOf(s)
		if tab.live != s.count || len(ring) != s.count {
			t.Errorf("shard %d: table live=%d len(ring)=%d count=%d", i, tab.live, len(ring), s.count)
		}
		found := 0
		for j := range tab.slots {
			if n := tab.slots[j].n.Load(); n != nil && n != deleted {
				found++
				if n.removed || n.next == nil {
					t.Errorf("shard %d: table holds marker or unlinked node %v", i, n.key)
				}
			}
		}
		if found != s.count {
			t.Errorf("shard %d: %d nodes in table, count=%d", i, found, s.count)
		}
		var bytes int64
		for _, n := range ring {
			if n.next.prev != n || n.prev.next != n {
				t.Errorf("shard %d: ring links broken at %v", i, n.key)
			}
			if got, _ := tab.find(c.hash(n.key), n.key); got != n {
				t.Errorf("shard %d: ring node %v not in map", i, n.key)
			}
			bytes += n.size()
		}
		if bytes != s.bytes || s.bytes > s.budget {
			t.Errorf("shard %d: bytes=%d sum=%d budget=%d", i, s.bytes, bytes, s.budget)
		}
		s.mu.Unlock()
	}
}

// ringOf lists the shard's ring from the hand. s.mu must be held.
func ringOf(s *shard) []*node {
	var out []*node
	for n := s.hand; n != nil; n = n.next {
		out = append(out, n)
		if n.next == s.hand || len(out) > 1<<24 {
			break
		}
	}
	return out
}

func TestGetSet(t *testing.T) {
	c := newTest(t, 1<<20, hooks{})
	k := Key{"t1", "a"}
	if e, ok := c.Get(k); ok || e != nil {
		t.Fatalf("Get on empty cache = %v, %v; want nil, false", e, ok)
	}
	v1 := ent(1, `{"v":1}`)
	if !c.Set(k, v1) {
		t.Fatal("Set(v1) on empty cache refused")
	}
	got, ok := c.Get(k)
	if !ok || got != v1 {
		t.Fatalf("Get = %p, %v; want the stored pointer %p", got, ok, v1)
	}
	if &got.Body[0] != &v1.Body[0] {
		t.Fatal("Get copied the body")
	}
	// Same strings, different tenant: distinct keys.
	if _, ok := c.Get(Key{"a", "t1"}); ok {
		t.Fatal("Key{a,t1} aliased Key{t1,a}")
	}
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 2 || st.Entries != 1 || st.Bytes != size(k, v1) {
		t.Fatalf("Stats = %+v", st)
	}
	checkInvariants(t, c)
}

func TestSetMonotonic(t *testing.T) {
	k := Key{"t", "k"}
	tests := []struct {
		name     string
		seqs     []uint64 // Set in this order
		tomb     []bool   // Tombstone per Set (nil: none)
		wantOK   []bool
		wantSeq  uint64
		wantTomb bool
	}{
		{"increasing", []uint64{1, 2, 3}, nil, []bool{true, true, true}, 3, false},
		{"older refused", []uint64{5, 3}, nil, []bool{true, false}, 5, false},
		{"equal refused", []uint64{5, 5}, nil, []bool{true, false}, 5, false},
		{"delete then older put", []uint64{2, 4, 3}, []bool{false, true, false}, []bool{true, true, false}, 4, true},
		{"delete then newer put", []uint64{2, 4, 6}, []bool{false, true, false}, []bool{true, true, true}, 6, false},
		{"older delete refused", []uint64{7, 6}, []bool{false, true}, []bool{true, false}, 7, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTest(t, 1<<20, hooks{})
			for i, seq := range tt.seqs {
				e := ent(seq, "x")
				if tt.tomb != nil && tt.tomb[i] {
					e = tomb(seq)
				}
				if got := c.Set(k, e); got != tt.wantOK[i] {
					t.Errorf("Set #%d (seq %d) = %v, want %v", i, seq, got, tt.wantOK[i])
				}
			}
			got, ok := c.Get(k)
			if !ok || got.Seq != tt.wantSeq || got.Tombstone != tt.wantTomb {
				t.Fatalf("Get = %+v, %v; want seq %d tombstone %v", got, ok, tt.wantSeq, tt.wantTomb)
			}
			checkInvariants(t, c)
		})
	}
}

func TestFillOutcomes(t *testing.T) {
	k := Key{"t", "k"}
	// The budget holds one entry, so evict(c) empties k's slot.
	budget := size(Key{"t", "zz"}, ent(1000, "x"))
	evict := func(c *Cache) { c.Set(Key{"t", "zz"}, ent(1000, "x")) }
	tests := []struct {
		name string
		run  func(c *Cache) bool // returns the last Fill's result
		want bool
		seq  uint64 // cached Seq of k afterwards; 0 = absent
	}{
		{"absent, valid lease", func(c *Cache) bool {
			l := c.Lease(k)
			return c.Fill(k, l, ent(1, "a"))
		}, true, 1},
		{"absent, zero lease", func(c *Cache) bool {
			return c.Fill(k, Lease{}, ent(1, "a"))
		}, false, 0},
		{"absent, Set since lease, newer evicted", func(c *Cache) bool {
			l := c.Lease(k)
			c.Set(k, ent(2, "b"))
			evict(c)
			return c.Fill(k, l, ent(1, "a"))
		}, false, 0},
		{"absent, refused Set still ends the lease", func(c *Cache) bool {
			c.Set(k, ent(5, "e"))
			evict(c)
			l := c.Lease(k)
			c.Set(k, ent(4, "d")) // refused by the ghost
			return c.Fill(k, l, ent(6, "f"))
		}, false, 0},
		{"absent, second fill of a generation", func(c *Cache) bool {
			l1, l2 := c.Lease(k), c.Lease(k)
			c.Fill(k, l1, ent(2, "b"))
			evict(c)
			return c.Fill(k, l2, ent(3, "c"))
		}, false, 0},
		{"absent, refused fill ends the generation", func(c *Cache) bool {
			l := c.Lease(k)
			c.Fill(k, Lease{}, ent(5, "e")) // a reader whose lease was dropped
			return c.Fill(k, l, ent(4, "d"))
		}, false, 0},
		{"absent, lease of an old generation", func(c *Cache) bool {
			l1 := c.Lease(k)
			c.Set(k, ent(1, "a"))
			evict(c)
			c.Lease(k) // new generation
			return c.Fill(k, l1, ent(2, "b"))
		}, false, 0},
		{"present, older refused", func(c *Cache) bool {
			l := c.Lease(k)
			c.Set(k, ent(2, "b"))
			return c.Fill(k, l, ent(1, "a"))
		}, false, 2},
		{"present, equal refused", func(c *Cache) bool {
			c.Set(k, ent(3, "c"))
			l := c.Lease(k)
			return c.Fill(k, l, ent(3, "c"))
		}, false, 3},
		{"present, newer installed", func(c *Cache) bool {
			c.Set(k, ent(3, "c"))
			l := c.Lease(k)
			return c.Fill(k, l, ent(4, "d"))
		}, true, 4},
		{"present, newer installed without a valid lease", func(c *Cache) bool {
			l := c.Lease(k)
			c.Set(k, ent(1, "a")) // ends l's generation
			return c.Fill(k, l, ent(2, "b"))
		}, true, 2},
		{"negative fill", func(c *Cache) bool {
			l := c.Lease(k)
			return c.Fill(k, l, tomb(0))
		}, true, 0},
		{"nil entry", func(c *Cache) bool {
			return c.Fill(k, c.Lease(k), nil)
		}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTest(t, budget, hooks{})
			if got := tt.run(c); got != tt.want {
				t.Errorf("Fill = %v, want %v", got, tt.want)
			}
			e, ok := c.Get(k)
			switch {
			case tt.name == "negative fill":
				if !ok || !e.Tombstone {
					t.Errorf("Get = %+v, %v; want cached tombstone", e, ok)
				}
			case tt.seq == 0 && ok:
				t.Errorf("Get = %+v; want miss", e)
			case tt.seq != 0 && (!ok || e.Seq != tt.seq):
				t.Errorf("Get = %+v, %v; want seq %d", e, ok, tt.seq)
			}
			if !tt.want && c.Stats().FillsRejected == 0 {
				t.Error("FillsRejected not counted")
			}
			checkInvariants(t, c)
		})
	}
}

func TestTombstones(t *testing.T) {
	c := newTest(t, 1<<20, hooks{})
	k := Key{"t", "doc"}
	c.Set(k, ent(1, "a"))
	if !c.Set(k, tomb(2)) {
		t.Fatal("delete refused")
	}
	e, ok := c.Get(k)
	if !ok || !e.Tombstone || e.Seq != 2 {
		t.Fatalf("Get after delete = %+v, %v; want tombstone at 2", e, ok)
	}
	// A reader that read the pre-delete version cannot resurrect it.
	l := c.Lease(k)
	if c.Fill(k, l, ent(1, "a")) {
		t.Fatal("Fill resurrected a deleted document")
	}
	if e, _ := c.Get(k); !e.Tombstone {
		t.Fatal("tombstone lost")
	}
}

func TestEvictionBudget(t *testing.T) {
	body := make([]byte, 100)
	one := size(Key{"t", "k00"}, &Entry{Body: body})
	c := newTest(t, 10*one, hooks{})
	for i := range 10 {
		if !c.Set(Key{"t", fmt.Sprintf("k%02d", i)}, &Entry{Seq: uint64(i + 1), Body: body}) {
			t.Fatalf("Set %d refused", i)
		}
	}
	if st := c.Stats(); st.Entries != 10 || st.Evictions != 0 || st.Bytes != 10*one {
		t.Fatalf("full cache: %+v", st)
	}
	// Reference k00..k04; the next five inserts must evict k05..k09.
	for i := range 5 {
		c.Get(Key{"t", fmt.Sprintf("k%02d", i)})
	}
	for i := 10; i < 15; i++ {
		c.Set(Key{"t", fmt.Sprintf("k%02d", i)}, &Entry{Seq: uint64(i + 1), Body: body})
	}
	st := c.Stats()
	if st.Entries != 10 || st.Evictions != 5 || st.Bytes > 10*one {
		t.Fatalf("after overflow: %+v", st)
	}
	for i := range 15 {
		_, ok := c.Get(Key{"t", fmt.Sprintf("k%02d", i)})
		if want := i < 5 || i >= 10; ok != want {
			t.Errorf("k%02d resident = %v, want %v (CLOCK should keep referenced keys)", i, ok, want)
		}
	}
	checkInvariants(t, c)

	// An entry larger than the shard budget is never cached, and replacing a
	// cached entry with one drops the old version.
	big := &Entry{Seq: 100, Body: make([]byte, 11*one)}
	if c.Set(Key{"t", "big"}, big) {
		t.Error("oversized Set installed")
	}
	if c.Set(Key{"t", "k00"}, big) {
		t.Error("oversized replacement installed")
	}
	if _, ok := c.Get(Key{"t", "k00"}); ok {
		t.Error("old version kept after oversized replacement")
	}
	checkInvariants(t, c)
}

func TestGrowInPlaceEvictsOthers(t *testing.T) {
	one := size(Key{"t", "a"}, &Entry{Body: make([]byte, 10)})
	c := newTest(t, 3*one, hooks{})
	c.Set(Key{"t", "a"}, &Entry{Seq: 1, Body: make([]byte, 10)})
	c.Set(Key{"t", "b"}, &Entry{Seq: 2, Body: make([]byte, 10)})
	c.Set(Key{"t", "c"}, &Entry{Seq: 3, Body: make([]byte, 10)})
	// a grows to take two slots: someone else must go, a must stay.
	if !c.Set(Key{"t", "a"}, &Entry{Seq: 4, Body: make([]byte, 10+one)}) {
		t.Fatal("growing Set refused")
	}
	if e, ok := c.Get(Key{"t", "a"}); !ok || e.Seq != 4 {
		t.Fatalf("Get(a) = %+v, %v", e, ok)
	}
	if st := c.Stats(); st.Entries != 2 || st.Evictions != 1 {
		t.Fatalf("Stats = %+v", st)
	}
	checkInvariants(t, c)
}

// TestGhostRefusesStaleSet: two writers commit v1 and v2 but Set in the
// opposite order, and v2 is evicted in between. Set(v1) must not install.
func TestGhostRefusesStaleSet(t *testing.T) {
	one := size(Key{"t", "k"}, ent(1, "x"))
	c := newTest(t, one, hooks{})
	k := Key{"t", "k"}
	c.Set(k, ent(2, "x"))             // W2's Set
	c.Set(Key{"t", "j"}, ent(3, "y")) // evicts v2 (budget holds one entry)
	if _, ok := c.Get(k); ok {
		t.Fatal("setup: v2 not evicted")
	}
	if c.Set(k, ent(1, "x")) { // W1's late Set
		t.Fatal("stale Set installed after the newer version was evicted")
	}
	if _, ok := c.Get(k); ok {
		t.Fatal("stale version served")
	}
	if c.Stats().SetsRejected != 1 {
		t.Fatalf("SetsRejected = %d, want 1", c.Stats().SetsRejected)
	}
	// A genuinely newer version is still accepted.
	if !c.Set(k, ent(4, "x")) {
		t.Fatal("newer Set refused")
	}
}

func TestLeaseCap(t *testing.T) {
	c := newCache(Options{MaxBytes: 1 << 20, Shards: 1, CompactInterval: -1, MaxLeasesPerShard: 4}, hooks{})
	defer c.Close()
	leases := make([]Lease, 10)
	for i := range leases {
		leases[i] = c.Lease(Key{"t", fmt.Sprint(i)})
	}
	if n := c.shards[0].leases.len(); n != 4 {
		t.Fatalf("live leases = %d, want cap 4", n)
	}
	if got := c.Stats().LeasesDropped; got != 6 {
		t.Fatalf("LeasesDropped = %d, want 6", got)
	}
	for i, l := range leases {
		ok := c.Fill(Key{"t", fmt.Sprint(i)}, l, ent(uint64(i+1), "v"))
		if want := i >= 6; ok != want {
			t.Errorf("Fill with lease %d = %v, want %v (oldest dropped)", i, ok, want)
		}
	}
	// Abandoned leases and churn on one key keep the queue bounded.
	for range 10000 {
		c.Lease(Key{"t", "hot"})
		c.Set(Key{"t", "hot"}, ent(1, "x"))
		c.Lease(Key{"t", "abandoned"})
	}
	lt := &c.shards[0].leases
	if len(lt.q)-lt.head > 2*lt.max+16 || lt.len() > lt.max {
		t.Fatalf("lease table grew: q=%d head=%d live=%d", len(lt.q), lt.head, lt.len())
	}
}

func TestGetZeroAllocs(t *testing.T) {
	c := newCache(Options{MaxBytes: 1 << 20, CompactInterval: -1}, hooks{})
	defer c.Close()
	hit, miss := Key{"tenant", "doc-1"}, Key{"tenant", "doc-2"}
	c.Set(hit, ent(1, "body"))
	if a := testing.AllocsPerRun(1000, func() { c.Get(hit) }); a != 0 {
		t.Errorf("Get hit allocs = %v, want 0", a)
	}
	if a := testing.AllocsPerRun(1000, func() { c.Get(miss) }); a != 0 {
		t.Errorf("Get miss allocs = %v, want 0", a)
	}
}

func TestOptions(t *testing.T) {
	c := New(Options{})
	defer c.Close()
	if n := len(c.shards); n&(n-1) != 0 || n < 64 {
		t.Errorf("default shards = %d", n)
	}
	for _, o := range []Options{{Shards: 3}, {Shards: -2}, {MaxBytes: -1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", o)
				}
			}()
			New(o).Close()
		}()
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestCompactorOnShrink: evictions that shrink a shard to a quarter of its
// high-water mark wake the compactor, which rebuilds it. synctest.Wait
// replaces any sleeping: it returns once the compactor is blocked again.
func TestCompactorOnShrink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		small := &Entry{Body: make([]byte, 10)}
		one := size(Key{"t", "k0000"}, small)
		c := newCache(Options{MaxBytes: 1000 * one, Shards: 1, CompactInterval: -1}, hooks{})
		defer c.Close()
		for i := range 1000 {
			c.Set(Key{"t", fmt.Sprintf("k%04d", i)}, &Entry{Seq: uint64(i + 1), Body: small.Body})
		}
		// One big entry evicts ~800 small ones: count falls below hw/4.
		c.Set(Key{"t", "big"}, &Entry{Seq: 5000, Body: make([]byte, 800*one)})
		synctest.Wait()
		st := c.Stats()
		if st.Compactions != 1 || st.Evictions < 750 {
			t.Fatalf("Stats = %+v; want one compaction after mass eviction", st)
		}
		checkInvariants(t, c)
	})
}

// TestCompactorPeriodic: the ticker drives a pass; shards that have not
// shrunk are left alone.
func TestCompactorPeriodic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(Options{MaxBytes: 1 << 30, Shards: 1, CompactInterval: time.Second}, hooks{})
		defer c.Close()
		s := &c.shards[0]
		for i := range 400 {
			c.Set(Key{"t", fmt.Sprint(i)}, ent(uint64(i+1), "x"))
		}
		time.Sleep(2 * time.Second) // fake time inside the bubble
		synctest.Wait()
		if n := c.Stats().Compactions; n != 0 {
			t.Fatalf("compactions = %d before any shrink", n)
		}
		// Shrink without signalling the compactor: only the ticker can find it.
		s.mu.Lock()
		s.kicked = true // suppress the shrink signal
		for s.count > 50 {
			s.removeLockedHash(hashKey(s.seed, s.hand.key), s.hand)
		}
		s.mu.Unlock()
		time.Sleep(time.Second)
		synctest.Wait()
		if n := c.Stats().Compactions; n != 1 {
			t.Fatalf("compactions = %d after a tick with a shrunk shard, want 1", n)
		}
		checkInvariants(t, c)
	})
}

func TestCompactPreservesEverything(t *testing.T) {
	c := newCache(Options{MaxBytes: 1 << 30, Shards: 4, CompactInterval: -1}, hooks{})
	defer c.Close()
	for i := range 1000 {
		c.Set(Key{"t", fmt.Sprint(i)}, ent(uint64(i+1), fmt.Sprint(i)))
	}
	c.Compact()
	if st := c.Stats(); st.Compactions != 4 || st.Entries != 1000 {
		t.Fatalf("Stats = %+v", st)
	}
	for i := range 1000 {
		e, ok := c.Get(Key{"t", fmt.Sprint(i)})
		if !ok || e.Seq != uint64(i+1) {
			t.Fatalf("key %d after Compact: %+v, %v", i, e, ok)
		}
	}
	checkInvariants(t, c)
}

// TestRefresh: a bulk write replaces a cached older version, admits nothing
// absent, ends the key's lease generation either way, and is not counted as
// a rejected fill.
func TestRefresh(t *testing.T) {
	c := New(Options{CompactInterval: -1})
	defer c.Close()
	cached, absent := Key{"t", "cached"}, Key{"t", "absent"}
	c.Set(cached, ent(1, "old"))

	lease := c.Lease(absent) // a reader about to fill the pre-ingest version
	if c.Refresh(absent, ent(2, "bulk")) {
		t.Fatal("Refresh admitted an absent key")
	}
	if _, ok := c.Get(absent); ok {
		t.Fatal("absent key cached by Refresh")
	}
	if c.Fill(absent, lease, ent(1, "pre-ingest")) {
		t.Fatal("a fill with a lease taken before the bulk write was installed")
	}
	if !c.Refresh(cached, ent(3, "bulk")) {
		t.Fatal("Refresh did not replace the cached older version")
	}
	if e, _ := c.Get(cached); e.Seq != 3 {
		t.Fatalf("cached Seq %d after Refresh, want 3", e.Seq)
	}
	if c.Refresh(cached, ent(2, "older")) {
		t.Fatal("Refresh installed an older version")
	}
	if got := c.Stats().FillsRejected; got != 1 { // the stale fill above, only
		t.Fatalf("FillsRejected = %d, want 1", got)
	}
}

// TestCountsExactUnderConcurrency checks that the hit and miss
// counters lose no increment when many goroutines, on every core, count at
// once (cairn_cache_hits_total is documented as an exact count).
func TestCountsExactUnderConcurrency(t *testing.T) {
	c := newCache(Options{MaxBytes: 1 << 20, CompactInterval: -1}, hooks{})
	defer c.Close()
	hit, miss := Key{"tenant", "doc-1"}, Key{"tenant", "doc-2"}
	c.Set(hit, ent(1, "body"))
	const goroutines, each = 16, 2000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				c.Get(hit)
				c.Get(miss)
			}
		})
	}
	wg.Wait()
	if st := c.Stats(); st.Hits != goroutines*each || st.Misses != goroutines*each {
		t.Fatalf("hits, misses = %d, %d; want %d each", st.Hits, st.Misses, goroutines*each)
	}
}

// TestNodeOwnsItsKey: a resident node's key is a copy in one allocation,
// so the cache keeps nothing alive of the buffer the caller's key strings
// were cut from (the request line, for a key taken from a URL).
func TestNodeOwnsItsKey(t *testing.T) {
	c := newTest(t, 1<<20, hooks{})
	line := "PUT /v1/tenants/t1/docs/some/key HTTP/1.1"
	k := Key{Tenant: line[16:18], Key: line[24:32]}
	if !c.Set(k, ent(1, `{}`)) {
		t.Fatal("Set refused")
	}
	s := c.shardOf(c.hash(k))
	n := s.lookup(c.hash(k), k)
	if n == nil || n.key != k {
		t.Fatalf("node for %v = %v", k, n)
	}
	lo, hi := uintptr(unsafe.Pointer(unsafe.StringData(line))), uintptr(unsafe.Pointer(unsafe.StringData(line)))+uintptr(len(line))
	for _, p := range []string{n.key.Tenant, n.key.Key} {
		if a := uintptr(unsafe.Pointer(unsafe.StringData(p))); a >= lo && a < hi {
			t.Fatalf("node key %q points into the caller's buffer", p)
		}
	}
	if unsafe.StringData(n.key.Key) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(n.key.Tenant)), len(n.key.Tenant))) {
		t.Fatal("node key strings are not one allocation")
	}
	if e, ok := c.Get(Key{Tenant: "t1", Key: "some/key"}); !ok || e.Seq != 1 {
		t.Fatalf("Get with equal strings = %v, %v", e, ok)
	}
	checkInvariants(t, c)
}

// TestLargestEntryFits: with MaxEntryBytes, an entry of that size is cached
// whatever the processor count; without it, a small cache split into its
// default shards refuses it.
func TestLargestEntryFits(t *testing.T) {
	const mib = 1 << 20
	big := &Entry{Seq: 1, Body: make([]byte, mib)}
	c := New(Options{MaxBytes: 60 * mib, MaxEntryBytes: mib + 4096, Shards: 0})
	defer c.Close()
	if !c.Set(Key{"t", "big"}, big) {
		t.Errorf("an entry of MaxEntryBytes in a 60 MiB cache was refused (%d shards)", len(c.shards))
	}
	if len(c.shards) > 1 && 60*mib/int64(len(c.shards)) < 2*(mib+4096) {
		t.Errorf("%d shards: a share under two of the largest entries", len(c.shards))
	}
	if len(c.shards) < 16 {
		t.Errorf("%d shards: more halved than a share of two entries needs", len(c.shards))
	}
}
