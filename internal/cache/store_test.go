package cache

import "sync"

// memStore mimics the durable store for tests: a commit assigns the next
// Seq under the store's lock; a read returns the latest committed entry, or
// a Seq-0 tombstone for a key never written.
type memStore struct {
	mu    sync.Mutex // guards seq, m and keyMu (the map, not the mutexes in it)
	seq   uint64
	m     map[Key]*Entry
	keyMu map[Key]*sync.Mutex
}

func newStore() *memStore {
	return &memStore{m: make(map[Key]*Entry), keyMu: make(map[Key]*sync.Mutex)}
}

// write is the docs service's write path: under the key's write lock (which
// the service holds anyway to check preconditions), commit, then Set the
// cache before acknowledging. Holding the key lock across both steps is what
// makes Sets of one key arrive in commit order; see "Writers" in doc.go.
// pause, if not nil, runs between commit and Set.
func (s *memStore) write(c *Cache, k Key, body string, tombstone bool, pause func()) {
	s.mu.Lock()
	km := s.keyMu[k]
	if km == nil {
		km = new(sync.Mutex)
		s.keyMu[k] = km
	}
	s.mu.Unlock()
	km.Lock()
	defer km.Unlock()
	e := s.commit(k, body, tombstone)
	if pause != nil {
		pause()
	}
	c.Set(k, e)
}

func (s *memStore) commit(k Key, body string, tombstone bool) *Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	e := &Entry{Seq: s.seq, Tombstone: tombstone}
	if !tombstone {
		e.Body = []byte(body)
	}
	s.m[k] = e
	return e
}

func (s *memStore) put(k Key, body string) *Entry { return s.commit(k, body, false) }

func (s *memStore) read(k Key) *Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[k]; ok {
		return e
	}
	return &Entry{Tombstone: true}
}

// readSide is the docs service's read path: Get, then on a miss Lease,
// read the store and Fill. It returns the body, "" for not found.
type readSide struct {
	c  *Cache
	st *memStore
	// yield, if set, runs between the steps of the read path to widen
	// the race windows (runtime.Gosched in the linearizability test).
	yield func()
}

func (r *readSide) get(k Key) string {
	e, ok := r.c.Get(k)
	if !ok {
		l := r.c.Lease(k)
		r.pause()
		e = r.st.read(k)
		r.pause()
		r.c.Fill(k, l, e)
	}
	if e.Tombstone {
		return ""
	}
	return string(e.Body)
}

func (r *readSide) pause() {
	if r.yield != nil {
		r.yield()
	}
}
