package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
)

// Upload is the fast path: it drains tenant's change log after the
// persisted upload position and, for each changed key, syncs the key's
// latest local version with the backend (usually one conditional put:
// see uploadKey). Keys are handled up to
// Config.UploadConcurrency at once, a page of the log at a time; the
// position is saved after each page, once every key in it is handled, so
// a crash redoes at most one page (and the actions are idempotent). Keys
// taken by a round wait for it (InFlight).
//
// The uploader does not consult the mass-deletion guard: each deletion it
// carries was made by a client, one at a time. It stops at the first error
// that is not about one key, with ErrBackendUnavailable when the breaker
// is open.
func (e *Engine) Upload(ctx context.Context, tenant string) (Stats, error) {
	st, _, err := e.uploadSome(ctx, tenant, 0)
	return st, err
}

// Flush uploads the changes of every tenant whose change log holds some
// not yet uploaded (those ReplicationLag counts), for a node stopping
// gracefully: without it, what was written within the coalesce window, or
// behind a busy uploader, would reach the backend only when the node runs
// again. Call it after Close (Run's uploader is stopped). It returns how
// many changes it uploaded and the first tenant's error; ctx bounds it.
func (e *Engine) Flush(ctx context.Context) (uploaded int, err error) {
	e.mu.Lock()
	tenants := slices.Sorted(maps.Keys(e.pending))
	e.mu.Unlock()
	// Several tenants at once, as Run drains them: a stop's few seconds
	// reach more of many small tenants.
	var mu sync.Mutex // guards uploaded and err
	eachTenant(ctx, tenants, func(_ int, t string) {
		st, uerr := e.Upload(ctx, t)
		mu.Lock()
		defer mu.Unlock()
		uploaded += st.Actions[Upload]
		if uerr != nil && err == nil {
			err = fmt.Errorf("tenant %s: %w", t, uerr)
		}
	})
	return uploaded, err
}

// uploadSome drains up to n changes of tenant's log (0: all of it), whole
// pages at a time, and reports whether changes may remain: Run's passes
// drain a big log a turn at a time, like rounds (see sched).
func (e *Engine) uploadSome(ctx context.Context, tenant string, n int) (Stats, bool, error) {
	st, more, err := e.upload(ctx, tenant, n)
	e.setProgress(tenant, func(p *Progress) { p.LastUploadErr = err })
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrBackendUnavailable) {
		// The breaker's opening says the rest; an upload that keeps
		// failing (a large document over a slow link, past its attempt's
		// timeout) says so once a minute.
		e.warnRepeated(ctx, "upload "+tenant, "reconcile: upload failed", "backend", e.name, "tenant", tenant,
			"class", fault.ClassOf(err).String(), "err", err)
	}
	return st, more, err
}

func (e *Engine) upload(ctx context.Context, tenant string, n int) (st Stats, more bool, err error) {
	st = Stats{Tenant: tenant, Started: e.cfg.Now()}
	defer func() { st.Duration = e.cfg.Now().Sub(st.Started) }() // named results: set on every return
	cp, err := e.loadCheckpoint(tenant)
	if err != nil {
		return st, false, err
	}
	after := cp.uploadSeq
	batch := make([]store.Change, 0, e.cfg.PageSize)
	for done := 0; n == 0 || done < n; done += len(batch) {
		limit := e.cfg.PageSize
		if n > 0 {
			limit = min(limit, n-done)
		}
		batch = batch[:0]
		read := e.reading(tenant) // before the read: see caughtUp
		for c, err := range e.st.Changes(ctx, tenant, after, limit) {
			if err != nil {
				return st, false, err
			}
			batch = append(batch, c)
		}
		if len(batch) == 0 {
			e.caughtUp(tenant, read)
			return st, false, nil
		}
		if t, ok := e.pendingSince(batch); ok {
			e.behind(tenant, t)
		}
		if _, err := e.uploadPage(ctx, tenant, batch, &st); err != nil {
			return st, false, err
		}
		after = batch[len(batch)-1].Seq
		if err := e.updateCheckpoint(tenant, func(c *checkpoint) { c.uploadSeq = max(c.uploadSeq, after) }); err != nil {
			return st, false, err
		}
		if len(batch) < limit {
			// The read found the log's end: changes made since were told
			// by Changed and get a drain of their own, after the
			// coalescing window (sched.changed), not this one.
			e.caughtUp(tenant, read)
			return st, false, nil
		}
	}
	return st, true, nil
}

// Uploaded is an object the uploader wrote: its key, the version it holds
// and the backend's ETag for it.
type Uploaded struct {
	Key     string
	Version doc.Version
	ETag    string
}

// uploadPage syncs the distinct keys of one page of changes with bounded
// concurrency. It returns what it wrote to the backend, in no particular
// order, and the first error that ends the drain.
func (e *Engine) uploadPage(ctx context.Context, tenant string, batch []store.Change, st *Stats) ([]Uploaded, error) {
	var (
		mu   sync.Mutex // guards st and sent
		sent []Uploaded
		fan  = newFanOut(e.cfg.UploadConcurrency)
		seen = make(map[string]bool, len(batch))
	)
	for _, c := range batch {
		if seen[c.Key] {
			continue // a later change of the same key: one sync covers both
		}
		seen[c.Key] = true
		if !fan.Go(ctx, func() error {
			var ks Stats
			up, err := e.uploadKey(ctx, tenant, c.Key, &ks)
			mu.Lock()
			defer mu.Unlock()
			st.Scanned++
			st.add(&ks)
			if up != nil {
				sent = append(sent, *up)
			}
			return err
		}) {
			break
		}
	}
	err := fan.Wait()
	return sent, err
}

// uploadKey syncs one key from its latest local version in one backend
// request when nothing changed remotely: the remote is taken to be the
// base (the object last synced, by its ETag; absent without a base), and
// when Decide on that says Upload the put goes straight out, if-match the
// base's ETag (if-none-match without a base). If the backend answers 412
// the remote did change: it is read and the key settles through
// decideAndApply as a round would (conflict, download, upload over the
// new object, or a base update when it already holds the local version,
// as after a crash between an upload and its base). When local and base
// agree there is nothing to upload and no request is made: what peers
// wrote is the rounds' (and the feed's) to bring. Anything else (no
// usable base ETag, a decision other than Upload) reads the remote's
// entry first, as a round's key would be.
func (e *Engine) uploadKey(ctx context.Context, tenant, key string, st *Stats) (*Uploaded, error) {
	local, err := e.localHeader(ctx, tenant, key)
	if err != nil {
		return nil, err
	}
	release, err := e.inflight.Acquire(ctx, tenant, key)
	if err != nil {
		return nil, err
	}
	defer release()
	k := &keyState{tenant: tenant, key: key, local: local}
	if k.base, err = e.base(ctx, tenant, key, nil); err != nil {
		return nil, err
	}
	if k.base == nil || k.base.RemoteETag != "" {
		k.assumed = true
		if k.base != nil {
			k.remote = &backend.Entry{Key: key, ETag: k.base.RemoteETag}
		}
		switch Explain(k.sides()).Action {
		case InSync:
			return nil, nil
		case Upload:
			err := e.decideAndApply(ctx, k, st, nil)
			if errors.Is(err, errStaleBase) {
				k.assumed = false
				err = e.fetch(ctx, k)
				if fault.ClassOf(err) == fault.Corruption {
					err = e.statDamaged(ctx, k, err)
				}
				if err == nil {
					err = e.decideAndApply(ctx, k, st, nil)
				}
			}
			err = e.settle(ctx, k, err, st) // before k.sent: a repair puts
			return k.sent, err
		}
		k.assumed, k.remote = false, nil
	}
	ent, err := call(ctx, e, backend.OpStat, func(ctx context.Context) (backend.Entry, error) {
		return e.be.Stat(ctx, tenant, key)
	})
	switch {
	case err == nil:
		k.remote = &ent
	case fault.ClassOf(err) != fault.NotFound:
		return nil, e.unavailable(err)
	}
	err = e.settle(ctx, k, e.decideAndApply(ctx, k, st, nil), st)
	return k.sent, err
}

// statDamaged learns the ETag of k's remote object, which failed
// verification with cause when read, so that its quarantine row names it
// and the repair overwrites only it (a Get that fails verification
// returns no entry). It returns cause once k.remote is that entry, nil
// when the object is gone (k.remote nil: decide again).
func (e *Engine) statDamaged(ctx context.Context, k *keyState, cause error) error {
	ent, err := call(ctx, e, backend.OpStat, func(ctx context.Context) (backend.Entry, error) {
		return e.be.Stat(ctx, k.tenant, k.key)
	})
	switch {
	case err == nil:
		k.remote = &ent
		return cause
	case fault.ClassOf(err) == fault.NotFound:
		k.remote, k.obj = nil, nil
		return nil
	}
	return e.unavailable(err)
}

// errStaleBase marks a put that assumed the remote was the base's object
// and found otherwise (412): the remote changed since the base.
var errStaleBase = errors.New("remote changed since the base")

func (s *Stats) add(o *Stats) {
	s.Conflicts += o.Conflicts
	s.Losers += o.Losers
	s.Siblings += o.Siblings
	s.Deletes += o.Deletes
	s.Corrupt += o.Corrupt
	s.Repaired += o.Repaired
	s.Quarantined += o.Quarantined
	s.Raced += o.Raced
	s.BytesUp += o.BytesUp
	s.BytesDown += o.BytesDown
	for i := range s.Actions {
		s.Actions[i] += o.Actions[i]
	}
}

// behind records that tenant's oldest change not yet uploaded was written
// at t (its HLC time), for ReplicationLag.
func (e *Engine) behind(tenant string, t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending[tenant] = t
}

// notePending marks, for each tenant the store holds, the oldest change
// this node wrote that its change log holds past the upload checkpoint:
// what a process before this one acknowledged and did not upload. Without
// it ReplicationLag reads 0 after a restart until the uploader reaches the
// tenant, which a backend that is down at start never lets it do: the lag
// alert would stay quiet through exactly that outage. It reads the store
// only, no backend, and at most noteScan changes a tenant and noteBudget
// in all, as Run answers nothing meanwhile: a longer run of versions other
// nodes wrote ahead of this node's own leaves them to the uploader to
// find. A mark Changed left first is kept if it is older.
func (e *Engine) notePending(ctx context.Context) {
	tenants, err := e.storedTenants(ctx)
	if err != nil {
		return // the first pass meets the store's error and reports it
	}
	own := e.st.Identity().Incarnation
	budget := noteBudget
	for _, tenant := range tenants {
		if budget <= 0 {
			return
		}
		cp, err := e.loadCheckpoint(tenant)
		if err != nil {
			continue
		}
		for c, err := range e.st.Changes(ctx, tenant, cp.uploadSeq, min(noteScan, budget)) {
			budget--
			if err != nil {
				break
			}
			if c.Version.Writer != own {
				continue
			}
			t := c.Version.HLC.Time()
			e.mu.Lock()
			if p, marked := e.pending[tenant]; !marked || t.Before(p) {
				e.pending[tenant] = t
			}
			e.mu.Unlock()
			break
		}
	}
}

// noteScan and noteBudget bound the changes notePending reads of one
// tenant and in all: a few tens of milliseconds of a start.
const (
	noteScan   = 4096
	noteBudget = 1 << 16
)

// pendingSince is the mark a page of changes leaves while it uploads:
// the time of its first change this node wrote; none (false) when it
// holds none, and the mark Changed left stands. A version the node
// downloaded or restored has nothing to upload, and its time is its
// writer's, maybe long ago: counted, a restore would show the age of the
// documents it restored as replication lag.
func (e *Engine) pendingSince(batch []store.Change) (time.Time, bool) {
	own := e.st.Identity().Incarnation
	for i := range batch {
		if batch[i].Version.Writer == own {
			return batch[i].Version.HLC.Time(), true
		}
	}
	return time.Time{}, false
}

// reading notes that a read of tenant's change log begins now, and
// returns the time.
func (e *Engine) reading(tenant string) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.told, tenant)
	return e.cfg.Now()
}

// caughtUp records that tenant's change log was found drained by a read
// that started at read. A change committed after that read was announced
// by Changed at a later time, so only an older mark is cleared; and a
// change told since the read began (which found the old mark and so left
// none of its own) becomes the mark: it waits for the next drain, a
// coalescing window away.
func (e *Engine) caughtUp(tenant string, read time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t, ok := e.pending[tenant]; ok && t.Before(read) {
		delete(e.pending, tenant)
	}
	if t, ok := e.told[tenant]; ok {
		if p, marked := e.pending[tenant]; !marked || t.Before(p) {
			e.pending[tenant] = t
		}
	}
}

// ReplicationLag is the age of the oldest change of any tenant not yet
// uploaded to the backend, as far as the engine knows: 0 when caught up.
// A change is known from Changed (at the time it is told) or from the
// change log once Upload has read it (the HLC time of a version this node
// wrote; a downloaded one's is not counted, see pendingSince); after a restart the
// changes waiting from before are known from the tenant's first upload in
// the first pass on. Safe to call from any goroutine (metrics read it at
// scrape time).
func (e *Engine) ReplicationLag() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	var oldest time.Time
	for _, t := range e.pending {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return max(0, e.cfg.Now().Sub(oldest))
}
