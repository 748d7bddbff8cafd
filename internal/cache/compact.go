package cache

import (
	"time"
)

// compactor is the Cache's one background goroutine. It rebuilds shards
// whose tables have shrunk, on a timer and when a shard signals on kick. It
// returns when stop is closed; Close waits for it.
func (c *Cache) compactor(interval time.Duration) {
	defer c.wg.Done()
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-c.stop:
			return
		case <-tick:
		case <-c.kick:
		}
		for i := range c.shards {
			select {
			case <-c.stop:
				return
			default:
			}
			s := &c.shards[i]
			s.mu.Lock()
			due := s.shrunkLocked()
			s.mu.Unlock()
			if due {
				c.rebuild(i)
			}
		}
	}
}

// Compact rebuilds every shard once, now, in the calling goroutine. Reads
// and writes proceed meanwhile (see rebuild). It is safe to call
// concurrently with the background compactor: a shard already being rebuilt
// is skipped.
func (c *Cache) Compact() {
	for i := range c.shards {
		c.rebuild(i)
	}
}

// rebuild replaces shard i's table with a fresh one sized to its live
// entries: removals leave deleted slots behind, and a table never shrinks by
// itself (nor does a Go map). Three steps; only the first and last hold mu,
// and only briefly:
//
//  1. freeze (mu held): publish an empty side table. From now on nobody
//     stores into tab's slots: new keys and removal markers go to side,
//     which readers search first; updates of existing keys store into
//     node.e, which both tables share.
//  2. copy (no lock): read the frozen tab's slots and insert the nodes into
//     a private fresh table. Readers keep using tab and side meanwhile.
//  3. swap (mu held): apply side to fresh (insert nodes, drop keys with
//     removal markers), publish fresh as tab, then drop side. O(len(side)):
//     the writes made during the copy.
//
// Readers never wait, not even for steps 1 and 3; writers wait at most for
// those. No write is lost: every write after the freeze is either in a node
// the copy carries over, or in side, which step 3 applies. tab is published
// before side is cleared, so a reader that sees no side sees fresh.
func (c *Cache) rebuild(i int) {
	s := &c.shards[i]
	s.mu.Lock()
	if s.side.Load() != nil { // another rebuild of this shard is in its copy step
		s.mu.Unlock()
		return
	}
	start := time.Now()
	frozen := s.tab.Load()
	s.side.Store(newTable(0))
	s.mu.Unlock()

	fresh := newTable(frozen.live)
	half := len(frozen.slots) / 2
	for j := range frozen.slots {
		if j == half && c.hooks.rebuildPaused != nil {
			c.hooks.rebuildPaused(i)
		}
		if n := frozen.slots[j].n.Load(); n != nil && n != deleted {
			fresh.insert(frozen.slots[j].hash.Load(), n)
		}
	}

	s.mu.Lock()
	side := s.side.Load()
	for j := range side.slots {
		n := side.slots[j].n.Load()
		if n == nil {
			continue
		}
		h := side.slots[j].hash.Load()
		_, at := fresh.find(h, n.key)
		switch {
		case n.removed && at >= 0:
			fresh.del(at)
		case n.removed:
		case at >= 0:
			fresh.slots[at].n.Store(n)
		default:
			if fresh.full() {
				fresh = fresh.rehashed()
			}
			fresh.insert(h, n)
		}
	}
	s.tab.Store(fresh)
	s.side.Store(nil)
	s.highWater, s.kicked = s.count, false
	s.mu.Unlock()

	c.compactions.Add(1)
	c.compactionNanos.Add(uint64(time.Since(start)))
}
