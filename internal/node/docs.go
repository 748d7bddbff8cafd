package node

import (
	"context"
	"iter"

	"github.com/cairnstore/cairn/internal/cache"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
)

// Docs is the document service the HTTP server calls: the cache in front of
// the store, cache-aside on reads and write-through after every commit.
//
// Ordering: a write updates the cache only after its commit returned, with
// the commit's Seq, and the cache refuses to replace a higher Seq, so two
// racing writers leave the later commit cached whatever order their Set calls
// run in. A read that misses takes a lease before it reads the store; the
// lease dies with any Set of the key, so a read that saw the older version
// cannot install it after a writer cached the newer one (the stale-fill race;
// see package cache).
type Docs struct {
	st *store.Store
	c  *cache.Cache
}

var _ server.Docs = (*Docs)(nil)

// NewDocs returns the service over st with c in front.
func NewDocs(st *store.Store, c *cache.Cache) *Docs { return &Docs{st: st, c: c} }

// Get returns the current live version of (tenant, key).
func (d *Docs) Get(ctx context.Context, tenant, key string) (server.Doc, error) {
	k := cache.Key{Tenant: tenant, Key: key}
	if e, ok := d.c.Get(k); ok {
		return docOf(e, tenant, key)
	}
	lease := d.c.Lease(k)
	rec, err := d.st.Get(ctx, tenant, key)
	if err != nil {
		return server.Doc{}, err
	}
	e := entryOf(&rec)
	d.c.Fill(k, lease, e)
	return docOf(e, tenant, key)
}

// Put commits body and caches the new version.
func (d *Docs) Put(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (etag string, created bool, err error) {
	rec, err := d.st.Put(ctx, tenant, key, body, pre)
	if err != nil {
		return "", false, err
	}
	d.c.Set(cache.Key{Tenant: tenant, Key: key}, entryOf(&rec))
	return rec.ETag, rec.Version.Parent.IsZero(), nil
}

// Delete commits a tombstone and caches it, so reads answer 404 from memory.
func (d *Docs) Delete(ctx context.Context, tenant, key string, pre doc.Precondition) error {
	rec, err := d.st.Delete(ctx, tenant, key, pre)
	if err != nil {
		return err
	}
	d.c.Set(cache.Key{Tenant: tenant, Key: key}, entryOf(&rec))
	return nil
}

// List streams the live documents of tenant from one store snapshot. It
// bypasses the cache: a listing wants a consistent view, which only the
// snapshot gives.
func (d *Docs) List(ctx context.Context, tenant, prefix, after string, limit int) iter.Seq2[server.Item, error] {
	return func(yield func(server.Item, error) bool) {
		o := store.ListOptions{Prefix: prefix, After: after, Limit: limit}
		for rec, err := range d.st.List(ctx, tenant, o) {
			if err != nil {
				yield(server.Item{}, err)
				return
			}
			if !yield(server.Item{Key: rec.Key, ETag: rec.ETag, Size: len(rec.Body)}, nil) {
				return
			}
		}
	}
}

func entryOf(rec *store.Record) *cache.Entry {
	return &cache.Entry{
		Seq:       rec.Seq,
		Tombstone: rec.Version.Tombstone,
		ETag:      rec.ETag,
		Body:      rec.Body,
	}
}

func docOf(e *cache.Entry, tenant, key string) (server.Doc, error) {
	if e.Tombstone {
		return server.Doc{}, fault.New(fault.NotFound, fault.Context{Op: "docs.get", Tenant: tenant, Key: key}, "no such document (deleted)")
	}
	return server.Doc{ETag: e.ETag, Body: e.Body}, nil
}
