package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// The committer: one goroutine (Store.run) owns the document write path.
// Writers queue a request on Store.reqs and wait on its reply channel. The
// committer takes every queued request (up to MaxBatch), evaluates each one
// in order against the current state including the earlier requests of the
// same group, stages the writes in one Pebble batch, commits it with one
// fsync, and then answers every request. See doc.go for why.

type opKind uint8

const (
	opPut opKind = iota
	opDelete
	opApply
)

var opNames = [...]string{opPut: "store.put", opDelete: "store.delete", opApply: "store.apply"}

// request is one queued write. The caller fills the inputs and waits on
// reply; the committer fills rec or err and sends once.
type request struct {
	ctx         context.Context
	op          opKind
	tenant, key string
	body        []byte   // private copy; nil for deletes
	hash        doc.Hash // of body, computed by the caller off the committer
	pre         doc.Precondition
	version     doc.Version // opApply: the version to install
	expect      doc.ID      // opApply: the current version's ID; zero = absent
	sync        *SyncUpdate // opApply: optional base update

	staged  bool   // written into the group's batch
	expired bool   // answered with its context error before joining a batch
	rec     Record // the answer
	err     error
	reply   chan *request // buffered(1): the committer never blocks on it
}

// submit queues r and waits for its answer. A request still queued when its
// context ends is answered with the context error by the committer and is
// not written; once the committer has taken it, the caller waits for the
// commit (one fsync) so that every answer is definite.
func (s *Store) submit(r *request) (Record, error) {
	op := opNames[r.op]
	if err := s.acquire(); err != nil {
		return Record{}, wrap(op, r.tenant, r.key, err)
	}
	defer s.release()
	r.reply = make(chan *request, 1)
	select {
	case s.reqs <- r:
	case <-r.ctx.Done():
		return Record{}, notWritten(op, r, r.ctx.Err())
	}
	<-r.reply
	return r.rec, r.err
}

func notWritten(op string, r *request, err error) error {
	return fault.E(fault.Unknown, fault.Context{Op: op, Tenant: r.tenant, Key: r.key},
		fmt.Errorf("not written: %w", err))
}

// run is the committer goroutine. It returns when Close closes reqs, after
// answering every request that was queued.
func (s *Store) run() {
	defer close(s.done)
	var carry *request // taken but did not fit in the previous group
	for {
		first := carry
		if first == nil {
			r, ok := <-s.reqs
			if !ok {
				return
			}
			first = r
		}
		var group []*request
		group, carry = s.gather(first)
		s.process(group)
	}
}

// gather takes first and whatever else is queued right now, up to MaxBatch
// requests and maxBatchBytes of bodies. It never waits for more: group
// commit comes from requests queuing while the previous fsync runs, so
// waiting would only add latency. The second result is a request that was
// taken but did not fit.
func (s *Store) gather(first *request) (group []*request, carry *request) {
	group = append(s.group[:0], first)
	size := len(first.body)
	for len(group) < s.maxBatch {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return group, nil // closed: run sees it on its next receive
			}
			if size+len(r.body) > maxBatchBytes {
				return group, r
			}
			size += len(r.body)
			group = append(group, r)
		default:
			return group, nil
		}
	}
	return group, nil
}

// current is what the committer knows of a key: the latest version,
// committed or staged earlier in the group.
type current struct {
	exists bool
	v      doc.Version
	id     doc.ID
	etag   string
}

func (c *current) live() bool { return c.exists && !c.v.Tombstone }

// group is the state of one group commit being built.
type group struct {
	batch   *pebble.Batch
	overlay map[string]*current // tenant NUL key → staged state
	seq     uint64              // last Seq assigned
	hlc     doc.Timestamp       // highest HLC handed out or observed
	n       int                 // writes staged
}

// process evaluates, commits and answers one group.
func (s *Store) process(reqs []*request) {
	defer func() {
		for i, r := range reqs {
			r.reply <- r
			reqs[i] = nil // let the request be collected
		}
		s.group = reqs[:0]
	}()
	if err := s.failedErr(); err != nil {
		for _, r := range reqs {
			r.err = wrap(opNames[r.op], r.tenant, r.key, err)
		}
		return
	}
	g := &group{batch: s.db.NewBatch(), overlay: make(map[string]*current, len(reqs)),
		seq: s.seq, hlc: s.hlcMark}
	defer g.batch.Close()
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			r.err, r.expired = notWritten(opNames[r.op], r, err), true
			continue
		}
		if err := s.stage(g, r); err != nil {
			r.err = wrap(opNames[r.op], r.tenant, r.key, err)
		}
	}
	if g.n == 0 {
		return
	}
	s.commit(g, reqs)
}

// commit writes the high-water marks into the group's batch and commits it.
// On failure every request of the group that was not already answered with
// its own context error gets the commit error, nothing is acknowledged, and
// the store fails (see ErrFailed).
func (s *Store) commit(g *group, reqs []*request) {
	_ = g.batch.Set(metaSeq, encodeUint64(g.seq), nil)
	_ = g.batch.Set(metaHLC, encodeUint64(uint64(g.hlc)), nil)
	start := time.Now()
	err := s.commitBatch(g.batch)
	dur := time.Since(start)
	if err != nil {
		for _, r := range reqs {
			if !r.expired {
				r.rec, r.err = Record{}, wrap(opNames[r.op], r.tenant, r.key, fmt.Errorf("commit: %w", err))
			}
		}
		return
	}
	s.seq, s.hlcMark = g.seq, g.hlc
	if s.onCommit != nil {
		s.onCommit(g.n, dur)
	}
}

func (s *Store) failedErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// stage evaluates r against the current state and, if it may proceed,
// stages its writes in the group's batch and sets r.rec.
func (s *Store) stage(g *group, r *request) error {
	ok := r.tenant + "\x00" + r.key
	cur, err := s.lookup(g, ok, r.tenant, r.key)
	if err != nil {
		return err
	}
	v, err := s.decide(cur, r)
	if err != nil {
		return err
	}
	g.hlc = max(g.hlc, v.HLC)
	g.seq++
	g.n++
	val := appendRecordValue(make([]byte, 0, 96+len(r.body)), g.seq, &v, r.body)
	_ = g.batch.Set(docKey(r.tenant, r.key), val, nil) // Set on a batch fails only on a closed batch
	_ = g.batch.Set(changeKey(r.tenant, g.seq), appendChangeValue(nil, r.key, &v), nil)
	if r.sync != nil {
		_ = g.batch.Set(syncKey(r.sync.Backend, r.tenant, r.key), appendSyncValue(nil, &r.sync.State), nil)
	}
	id := v.ID()
	etag := `"` + id.String() + `"`
	g.overlay[ok] = &current{exists: true, v: v, id: id, etag: etag}
	r.staged = true
	r.rec = Record{Tenant: r.tenant, Key: r.key, Seq: g.seq, Version: v, ETag: etag, Body: r.body}
	return nil
}

// decide checks r's condition against cur and returns the version to write.
// Outcomes: the new version; fault.NotFound (delete of an absent or deleted
// key); fault.PreconditionFailed (a precondition or the CAS did not hold).
func (s *Store) decide(cur *current, r *request) (doc.Version, error) {
	var parent *doc.Version
	if cur.exists {
		parent = &cur.v
	}
	switch r.op {
	case opPut:
		if err := r.pre.Check(cur.etag, cur.live()); err != nil {
			return doc.Version{}, err
		}
		// Derive hashes the body it is given; the caller already hashed it
		// off this goroutine, so pass nil and fill the hash in.
		v := doc.Derive(parent, s.id.Incarnation, s.clock.Now(), nil, false)
		v.Hash = r.hash
		return v, nil
	case opDelete:
		if !cur.live() {
			return doc.Version{}, fault.New(fault.NotFound, fault.Context{}, "document not found")
		}
		if err := r.pre.Check(cur.etag, true); err != nil {
			return doc.Version{}, err
		}
		return doc.Derive(parent, s.id.Incarnation, s.clock.Now(), nil, true), nil
	default: // opApply
		if cur.id != r.expect {
			return doc.Version{}, fault.New(fault.PreconditionFailed, fault.Context{}, fmt.Sprintf(
				"compare-and-set: current version is %s, expected %s", idOrAbsent(cur), r.expect))
		}
		s.clock.Observe(r.version.HLC)
		return r.version, nil
	}
}

func idOrAbsent(c *current) string {
	if !c.exists {
		return "absent"
	}
	return c.id.String()
}

// lookup returns the current state of a key: staged earlier in this group,
// or committed. The committer is the only writer of document rows, so the
// database plus the overlay is exact.
func (s *Store) lookup(g *group, ok, tenant, key string) (*current, error) {
	if c, found := g.overlay[ok]; found {
		return c, nil
	}
	val, closer, err := s.db.Get(docKey(tenant, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return &current{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	_, v, _, err := decodeRecordValue(val)
	if err != nil {
		return nil, err
	}
	id := v.ID()
	return &current{exists: true, v: v, id: id, etag: `"` + id.String() + `"`}, nil
}
