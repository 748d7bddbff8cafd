package cache

import "sync"

// memStore mimics the durable store for tests: a commit assigns the next
// Seq under the store's lock; a read returns the latest committed entry, or
// a Seq-0 tombstone for a key never written.
type memStore struct {
	mu  sync.Mutex // guards seq and m
	seq uint64
	m   map[Key]*Entry
}

func newStore() *memStore { return &memStore{m: make(map[Key]*Entry)} }

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
}

func (r *readSide) get(k Key) string {
	e, ok := r.c.Get(k)
	if !ok {
		l := r.c.Lease(k)
		e = r.st.read(k)
		r.c.Fill(k, l, e)
	}
	if e.Tombstone {
		return ""
	}
	return string(e.Body)
}
