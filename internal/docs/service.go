package docs

import (
	"context"
	"errors"
	"iter"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"

	"github.com/cairnstore/cairn/internal/cache"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/reconcile"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// Service is the document service the HTTP server calls: the cache in
// front of the store, kept linearizable with it.
//
// # How the cache follows the store
//
// Reads are cache-aside: a miss takes a lease, reads the store and offers
// what it read with Fill, which the cache refuses if a newer version was
// installed meanwhile or the lease ended (the stale-fill race; see package
// cache).
//
// Writes never touch the cache from the writer's goroutine. The store's
// Watcher (a [Follower], given to the store before it opens) updates the
// cache: the store's syncer calls it for each write once its group is
// durable and before any answer that depends on it leaves the store. Had
// the writer updated the cache after Put returned, there would be a window
// in which a concurrent Delete already answered "not found" (or a
// conditional Put 412) from the store's state while a Get still served the
// old version from the cache: new, then old. TestLinearizableCacheAndStore
// finds that anomaly within a second when the writer updates the cache.
type Service struct {
	st *store.Store
	c  *cache.Cache
	// catchingUp, if set, returns the engines whose backends tenant is
	// catching up with (catchup.go); none means the store's answers stand.
	catchingUp func(tenant string) []*reconcile.Engine
}

var _ server.Docs = (*Service)(nil)

// New returns the service over st with c in front. st must have been
// opened with NewFollower(c, …) as its Watcher, so that c follows it.
// catchingUp, if not nil, returns the engines whose backends tenant is
// catching up with (package reconcile, Engine.CatchingUp); while there are
// any, the service reads through to them and refuses what it cannot
// decide (catchup.go).
func New(st *store.Store, c *cache.Cache, catchingUp func(tenant string) []*reconcile.Engine) *Service {
	return &Service{st: st, c: c, catchingUp: catchingUp}
}

// Follower is the store's Watcher: it keeps the cache in step with the
// store's commits and tells the change feed which tenants changed. It
// needs only the cache, so it exists before the store opens and the store
// takes it in its Options; the Service over the store is made after.
type Follower struct {
	c *cache.Cache
	// changed, if set, is told of every commit, on the committer's
	// goroutine: it must not block.
	changed func(rec *store.Record)
}

var _ store.Watcher = (*Follower)(nil)

// NewFollower returns the Watcher that keeps c in step with the store;
// changed, if not nil, is told of every commit, on the store's committer
// goroutine, and must not block or keep rec.
func NewFollower(c *cache.Cache, changed func(rec *store.Record)) *Follower {
	return &Follower{c: c, changed: changed}
}

// Committed implements store.Watcher.
func (f *Follower) Committed(rec *store.Record) {
	if f.changed != nil {
		f.changed(rec)
	}
	if rec.Bulk { // an ingest: refresh, don't admit (see bulkCommitted)
		f.bulkCommitted(rec)
		return
	}
	f.c.Set(cache.Key{Tenant: rec.Tenant, Key: rec.Key}, entryOf(rec))
}

// Get returns the current live version of (tenant, key).
func (d *Service) Get(ctx context.Context, tenant, key string) (server.Doc, error) {
	if es := d.catchingUpWith(tenant); len(es) > 0 {
		return d.getCatchingUp(ctx, es, tenant, key)
	}
	k := cache.Key{Tenant: tenant, Key: key}
	_, span := telemetry.StartChild(ctx, "cache.get")
	e, hit := d.c.Get(k)
	if span.IsRecording() {
		span.SetAttributes(attribute.Bool("cairn.cache.hit", hit))
	}
	span.End()
	if hit {
		return docOf(e, tenant, key)
	}
	lease := d.c.Lease(k)
	ctx, span = telemetry.StartChild(ctx, "store.get")
	rec, err := d.st.Get(ctx, tenant, key)
	span.End()
	if err != nil {
		return server.Doc{}, err
	}
	e = entryOf(&rec)
	d.c.Fill(k, lease, e)
	return docOf(e, tenant, key)
}

// Put commits body; the cache learns of it through the Watcher. Body is
// handed to the store without a copy (server.Docs: it belongs to the
// service after the call), and the cache entry holds it.
func (d *Service) Put(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (etag string, created bool, err error) {
	if err := d.undecidable(tenant, pre); err != nil {
		return "", false, err
	}
	ctx, span := telemetry.StartChild(ctx, "store.commit")
	defer span.End()
	rec, err := d.st.PutOwned(ctx, tenant, key, body, pre)
	if err != nil {
		return "", false, err
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("cairn.store.group_size", rec.Group), attribute.Int64("cairn.store.seq", int64(rec.Seq)))
	}
	return rec.ETag, rec.Created, nil
}

// Delete commits a tombstone; reads then answer 404 from the cache.
func (d *Service) Delete(ctx context.Context, tenant, key string, pre doc.Precondition) error {
	if err := d.undecidable(tenant, pre); err != nil {
		return err
	}
	ctx, span := telemetry.StartChild(ctx, "store.commit")
	defer span.End()
	rec, err := d.st.Delete(ctx, tenant, key, pre)
	if errors.Is(err, fault.ErrNotFound) && len(d.catchingUpWith(tenant)) > 0 {
		return &server.CatchingUpError{Tenant: tenant, Err: err,
			Msg: "the node does not hold this document yet, so it cannot say whether it exists"}
	}
	if err == nil && span.IsRecording() {
		span.SetAttributes(attribute.Int("cairn.store.group_size", rec.Group), attribute.Int64("cairn.store.seq", int64(rec.Seq)))
	}
	return err
}

// List streams the live documents of tenant from one store snapshot. It
// bypasses the cache: a listing wants a consistent view, which only the
// snapshot gives. While the tenant catches up it yields a CatchingUpError
// and nothing else: the store lacks the documents not restored yet, and a
// listing without them would be a wrong answer no client could tell from
// a right one (a read of one document is answered: it reads through).
func (d *Service) List(ctx context.Context, tenant, prefix, after string, limit int) iter.Seq2[server.Item, error] {
	return func(yield func(server.Item, error) bool) {
		if len(d.catchingUpWith(tenant)) > 0 {
			yield(server.Item{}, &server.CatchingUpError{Tenant: tenant,
				Msg: "a listing would miss the documents the node has not restored yet; retry later (a read of one document is served)"})
			return
		}
		o := store.ListOptions{Prefix: prefix, After: after, Limit: limit}
		for rec, err := range d.st.List(ctx, tenant, o) {
			if err != nil {
				yield(server.Item{}, err)
				return
			}
			if !yield(server.Item{Key: rec.Key, ETag: rec.ETag, Size: len(rec.Body), Conflict: rec.Version.Siblings}, nil) {
				return
			}
		}
	}
}

// entryOf returns the cache entry of rec. A small document's ETag and body
// are copied into one allocation, so a cached document holds only what it
// needs: not the buffer its body was read into, with that buffer's spare
// capacity, and one object fewer for the collector (docs/design/cache.md).
// A large body is shared as it is: copying it would cost more than the
// memory it could save.
func entryOf(rec *store.Record) *cache.Entry {
	e := sharedEntryOf(rec)
	if n := len(rec.ETag) + len(rec.Body); len(rec.Body) > 0 && n <= packLimit {
		b := make([]byte, n)
		copy(b, rec.ETag)
		copy(b[len(rec.ETag):], rec.Body)
		e.ETag = unsafe.String(&b[0], len(rec.ETag)) // b is never written again
		e.Body = b[len(rec.ETag):n:n]
	}
	return e
}

// sharedEntryOf returns the cache entry of rec, sharing its ETag and body.
func sharedEntryOf(rec *store.Record) *cache.Entry {
	return &cache.Entry{
		Seq:       rec.Seq,
		Tombstone: rec.Version.Tombstone,
		Siblings:  rec.Version.Siblings,
		ETag:      rec.ETag,
		Body:      rec.Body,
	}
}

// packLimit is the largest ETag plus body that entryOf copies.
const packLimit = 4 << 10

func docOf(e *cache.Entry, tenant, key string) (server.Doc, error) {
	if e.Tombstone {
		return server.Doc{}, fault.New(fault.NotFound, fault.Context{Op: "docs.get", Tenant: tenant, Key: key}, "no such document (deleted)")
	}
	if e.Siblings {
		// The cached entry is the sibling set itself (the store's document
		// row), so a hit can never serve one sibling as the document.
		return server.Doc{}, doc.ConflictError("docs.get", tenant, key, e.ETag, e.Body)
	}
	return server.Doc{ETag: e.ETag, Body: e.Body}, nil
}

// bulkCommitted is Committed for a write of an ingest (store.Record.Bulk).
// A bulk load must not fill the cache: it would evict the working set for
// documents nobody asked for, and make the node's memory grow to the cache
// budget during every large ingest. Refresh does what linearizability
// needs without admitting anything:
//   - k is cached (with a lower Seq): the new version replaces it, before
//     the ingest is answered, exactly as Set would;
//   - k is absent: nothing is installed, and k's lease generation ends, so
//     a reader that read the older version from the store before this
//     commit cannot install it afterwards (the stale-fill race); readers
//     that come later miss and read the new version from the store.
func (f *Follower) bulkCommitted(rec *store.Record) {
	k := cache.Key{Tenant: rec.Tenant, Key: rec.Key}
	// Most ingested keys are not cached, and Refresh installs nothing for
	// them: only a cached key's entry is worth entryOf's copy. A key cached
	// between the two calls gets the entry that shares the record's ETag
	// and body, which is as correct and costs one object more while it
	// stays. (Refresh cannot build the entry itself: the shard's lock is
	// never held across a call out of the cache.)
	e := sharedEntryOf(rec)
	if f.c.Resident(k) {
		e = entryOf(rec)
	}
	f.c.Refresh(k, e)
}
