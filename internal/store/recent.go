package store

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// recentStates holds the committed state of the keys updated most recently
// by single writes, so that the next write to such a key, the common case
// of a hot key, does not read the key's row back from Pebble: readCurrent
// builds a level iterator stack and searches the memtables, about a fifth
// of the CPU of a durable write to an existing key.
//
// Exactness: the syncer is its only writer. After a group commits, and
// before the committed mark moves past it, the syncer records the state
// each update of the group left (put), and forgets the key of each bulk
// write and collection (drop). Eviction only forgets. So an entry, when
// present, is the key's latest committed state as of every group whose
// mark a reader can have loaded, and a reader that misses reads Pebble, as
// before (readCommitted).
//
// Only single writes over an existing version are recorded. A create is
// neither recorded nor forgotten: a key written once is seldom written
// again soon, so recording it would churn the table (a stream of creates
// would evict every hot key), and a key without a row has no entry to
// forget (entries are updates' states, and a collection, which removes a
// row, forgets its key). Bulk writes (PutBatch, ApplyBatch) forget the
// key, which costs one atomic load while the table is empty, as it is
// during a bulk load.
type recentStates struct {
	seed   maphash.Seed
	n      atomic.Int64 // entries over all shards
	perMax int          // entries per shard
	shards [recentShards]recentShard
}

type recentShard struct {
	mu sync.Mutex
	m  map[string]*current
	_  [48]byte // a shard spans a cache line, so no two shards share their lock's: the syncer and writers contend
}

const (
	recentShards = 16
	// recentKeys bounds the table. An entry is a version (vector, parent,
	// ETag) and its key, about 250 bytes: 32Ki entries are about 8 MiB.
	recentKeys = 32 << 10
)

func newRecentStates(keys int) *recentStates {
	r := &recentStates{seed: maphash.MakeSeed(), perMax: max(1, keys/recentShards)}
	for i := range r.shards {
		r.shards[i].m = make(map[string]*current)
	}
	return r
}

func (r *recentStates) shard(ok string) *recentShard {
	return &r.shards[maphash.String(r.seed, ok)%recentShards]
}

// get returns the recorded state of the overlay key ok, if any.
func (r *recentStates) get(ok string) (*current, bool) {
	if r.n.Load() == 0 {
		return nil, false
	}
	sh := r.shard(ok)
	sh.mu.Lock()
	c, found := sh.m[ok]
	sh.mu.Unlock()
	return c, found
}

// put records c as the committed state of ok, evicting an arbitrary entry
// of a full shard. A sibling state carries the sibling set's body, of any
// size, so it is forgotten instead.
func (r *recentStates) put(ok string, c *current) {
	if c.set != nil {
		r.drop(ok)
		return
	}
	sh := r.shard(ok)
	sh.mu.Lock()
	if _, found := sh.m[ok]; !found {
		if len(sh.m) >= r.perMax {
			for k := range sh.m {
				delete(sh.m, k)
				break
			}
		} else {
			r.n.Add(1)
		}
	}
	sh.m[ok] = c
	sh.mu.Unlock()
}

// drop forgets ok.
func (r *recentStates) drop(ok string) {
	if r.n.Load() == 0 {
		return
	}
	sh := r.shard(ok)
	sh.mu.Lock()
	if _, found := sh.m[ok]; found {
		delete(sh.m, ok)
		r.n.Add(-1)
	}
	sh.mu.Unlock()
}

// record updates r with the writes of g, which has just committed, in the
// order they were staged.
func (r *recentStates) record(g *group) {
	for _, q := range g.reqs {
		switch {
		case q.state == nil: // not staged
		case q.rec.Bulk || !q.state.exists: // a bulk write, or a collection
			r.drop(q.ok)
		case q.update:
			r.put(q.ok, q.state)
		}
	}
}
