package cache

// leaseTable tracks the outstanding lease generation of each key in one
// shard. It is guarded by the owning shard's mu.
//
// A generation starts when a key with no outstanding lease is leased, and
// ends at the first Set or Fill of the key (whatever their outcome), or when
// the cap drops it. All leases granted within one generation are valid until
// it ends; a lease from an earlier generation is not, because tokens only
// grow and a generation is identified by its first token.
type leaseTable struct {
	m    map[Key]uint64 // key → first token of its live generation
	q    []leaseRec     // generations in grant order; q[head:] is pending, may hold stale records
	head int
	next uint64 // last token granted; 0 is never a token
	max  int    // cap on len(m)
}

type leaseRec struct {
	k   Key
	tok uint64
}

// grant returns a new token for k and how many generations it had to drop
// to stay within the cap.
func (t *leaseTable) grant(k Key) (tok uint64, dropped int) {
	t.next++
	tok = t.next
	if t.m == nil {
		t.m = make(map[Key]uint64)
	}
	if _, ok := t.m[k]; ok {
		return tok, 0 // joins the live generation
	}
	t.m[k] = tok
	t.q = append(t.q, leaseRec{k, tok})
	for len(t.m) > t.max && t.head < len(t.q) {
		r := t.q[t.head]
		t.q[t.head] = leaseRec{}
		t.head++
		if cur, ok := t.m[r.k]; ok && cur == r.tok {
			delete(t.m, r.k)
			dropped++
		}
	}
	t.trim()
	return tok, dropped
}

// trim keeps q proportional to len(m): it drops the consumed prefix and,
// when stale records (generations ended by Set or Fill) pile up, filters
// them out. Both are amortised O(1) per grant.
func (t *leaseTable) trim() {
	if t.head > 0 && t.head >= len(t.q)/2 {
		n := copy(t.q, t.q[t.head:])
		clear(t.q[n:])
		t.q, t.head = t.q[:n], 0
	}
	if len(t.q)-t.head > 2*t.max+16 {
		// Only the pending records q[head:] are kept, moved to the front,
		// so head starts over. (Filtering all of q and keeping head left
		// head beyond the shorter q, and the next trim sliced out of range.)
		live := t.q[:0]
		for _, r := range t.q[t.head:] {
			if cur, ok := t.m[r.k]; ok && cur == r.tok {
				live = append(live, r)
			}
		}
		clear(t.q[len(live):])
		t.q, t.head = live, 0
	}
}

// redeem reports whether tok belongs to k's live generation, and ends that
// generation either way: after any Fill of k, the other leases of the
// generation are refused (docs/design/cache.md, "The stale-fill race").
func (t *leaseTable) redeem(k Key, tok uint64) bool {
	first, ok := t.m[k]
	if !ok {
		return false
	}
	delete(t.m, k)
	return tok != 0 && tok >= first
}

// invalidate ends k's live generation, if any.
func (t *leaseTable) invalidate(k Key) {
	if t.m != nil {
		delete(t.m, k)
	}
}

// len reports the number of live generations (tests).
func (t *leaseTable) len() int { return len(t.m) }
