package docs

import (
	"context"
	"iter"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
)

var _ server.Conflicts = (*Service)(nil)

// Conflicts implements server.Conflicts from the store's index of open
// siblings (one snapshot, like List; the cache is not involved).
func (d *Service) Conflicts(ctx context.Context, tenant, prefix, after string, limit int) iter.Seq2[server.Conflict, error] {
	return func(yield func(server.Conflict, error) bool) {
		o := store.ListOptions{Prefix: prefix, After: after, Limit: limit}
		for rec, err := range d.st.Siblings(ctx, tenant, o) {
			var cf server.Conflict
			if err == nil {
				cf, err = conflictOf(&rec, false)
			}
			if err != nil {
				yield(server.Conflict{}, err)
				return
			}
			if !yield(cf, nil) {
				return
			}
		}
	}
}

// Conflict implements server.Conflicts. It reads the store, not the cache:
// a resolution is a person's action, and the store is where the write that
// resolves it will check the set's ETag anyway.
func (d *Service) Conflict(ctx context.Context, tenant, key string) (server.Conflict, error) {
	rec, err := d.st.Get(ctx, tenant, key)
	if err != nil {
		return server.Conflict{}, err
	}
	if !rec.Version.Siblings {
		return server.Conflict{}, fault.New(fault.NotFound, fault.Context{Op: "docs.conflict", Tenant: tenant, Key: key},
			"the document has no open siblings")
	}
	return conflictOf(&rec, true)
}

func conflictOf(rec *store.Record, bodies bool) (server.Conflict, error) {
	sibs, err := doc.DecodeSiblings(rec.Body)
	if err != nil {
		return server.Conflict{}, fault.E(fault.Corruption, fault.Context{Op: "docs.conflict", Tenant: rec.Tenant, Key: rec.Key}, err)
	}
	cf := server.Conflict{Key: rec.Key, ETag: rec.ETag, Siblings: make([]server.Sibling, len(sibs))}
	for i, s := range sibs {
		v := &s.Version
		cf.Siblings[i] = server.Sibling{ETag: v.ETag(), Deleted: v.Tombstone, Writer: v.Writer, Time: v.HLC.Time(), Size: len(s.Body)}
		if bodies && !v.Tombstone {
			cf.Siblings[i].Body = s.Body
		}
	}
	return cf, nil
}

// History implements server.Conflicts from the store's conflict history.
func (d *Service) History(ctx context.Context, tenant, key string) iter.Seq2[server.Lost, error] {
	return func(yield func(server.Lost, error) bool) {
		for c, err := range d.st.Conflicts(ctx, tenant, key) {
			if err != nil {
				yield(server.Lost{}, err)
				return
			}
			v := &c.Loser
			l := server.Lost{Winner: c.Winner.ETag(), Reason: c.Reason, Sibling: server.Sibling{
				ETag: v.ETag(), Deleted: v.Tombstone, Writer: v.Writer, Time: v.HLC.Time(), Size: len(c.Body), Body: c.Body}}
			if !yield(l, nil) {
				return
			}
		}
	}
}
