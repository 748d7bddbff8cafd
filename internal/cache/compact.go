package cache

import (
	"time"
)

// compactor is the Cache's one background goroutine. It rebuilds shards
// whose maps have shrunk, on a timer and when a shard signals on kick. It
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
			s.mu.RLock()
			due := s.shrunkLocked()
			s.mu.RUnlock()
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

// rebuild replaces shard i's map with a fresh one sized to its live
// entries, because a Go map never releases buckets after deletes. Three
// steps; only the first and last hold mu, and only briefly:
//
//  1. freeze (mu held): from now on nobody writes m. New keys and removals
//     go to side, which lookups consult first; updates of existing keys
//     change node.e in place, which the copy does not read.
//  2. copy (no lock): iterate the frozen m and copy node pointers into a new
//     map. Concurrent reads of a Go map are safe, and m has no writer.
//  3. swap (mu held): apply side to the new map, install it, drop side.
//     This is O(len(side)): the writes made during the copy.
//
// Readers wait at most for steps 1 and 3. No write is lost: every write
// made after the freeze is either in a node the copy carries over, or in
// side, which step 3 applies.
func (c *Cache) rebuild(i int) {
	s := &c.shards[i]
	s.mu.Lock()
	if s.side != nil { // another rebuild of this shard is in its copy step
		s.mu.Unlock()
		return
	}
	start := time.Now()
	frozen := s.m
	s.side = make(map[Key]*node)
	s.mu.Unlock()

	fresh := make(map[Key]*node, len(frozen))
	half, copied := len(frozen)/2, 0
	for k, n := range frozen {
		if copied == half && c.hooks.rebuildPaused != nil {
			c.hooks.rebuildPaused(i)
		}
		fresh[k] = n
		copied++
	}
	if len(frozen) == 0 && c.hooks.rebuildPaused != nil {
		c.hooks.rebuildPaused(i)
	}

	s.mu.Lock()
	for k, n := range s.side {
		if n == nil {
			delete(fresh, k)
		} else {
			fresh[k] = n
		}
	}
	s.m, s.side = fresh, nil
	s.highWater, s.kicked = s.count, false
	s.mu.Unlock()

	c.compactions.Add(1)
	c.compactionNanos.Add(uint64(time.Since(start)))
}
