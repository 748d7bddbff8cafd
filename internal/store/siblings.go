package store

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Open siblings. A document whose concurrent versions are kept for a person
// (the manual conflict policy) holds one version like any other: a sibling
// set (doc.Version.Siblings), whose body holds the siblings, installed by
// the reconciler with Apply. So the set is as durable as any document, it
// travels to the backends and the other nodes like one, and a reader sees
// it in the document row itself: no second lookup, and the cache in front
// caches the set, never a sibling.
//
// Next to the document, an index of the keys with open siblings, so they
// can be listed without scanning the tenant, written in the same batch as
// the document:
//
//	'o' tenant 0x00 key → (empty)
//
// Writes over a sibling set (see current.check):
//
//   - Put and Delete must name the set or one sibling in If-Match: they
//     then resolve the conflict (the new version derives from the set, so
//     its vector is the siblings' pointwise maximum plus this node's
//     increment: it dominates every sibling). Without If-Match, or with
//     only "*", they fail with fault.Conflict (doc.ConflictError), which
//     names the siblings: a writer that has not seen them must not discard
//     them unknowingly. Other ETags fail with fault.PreconditionFailed.
//   - PutBatch (bulk ingestion) is unconditional by contract: it replaces
//     the set like any version.
//
// Whatever replaces a set, each sibling whose content it does not keep
// goes to the conflict history (conflicts.go) in the same batch, so a
// resolution never loses a version: it can be listed and restored.
const tableOpen = 'o'

func openKey(tenant, key string) []byte {
	return append(tenantPrefix(tableOpen, tenant), key...)
}

// resolvedReason is the conflict-history reason of a sibling that a
// resolution did not keep.
const resolvedReason = "sibling not kept when the conflict was resolved"

// stageSiblings stages, in the group's batch, the index and history rows of
// r, which writes next over cur, when either is a sibling set.
func stageSiblings(b *pebble.Batch, r *request, cur, next *current) {
	if next.v.Siblings {
		next.set = r.body
		_ = b.Set(openKey(r.tenant, r.key), nil, nil)
		return
	}
	_ = b.Delete(openKey(r.tenant, r.key), nil)
	sibs, err := doc.DecodeSiblings(cur.set)
	if err != nil {
		// The set was installed by Apply after the reconciler verified it;
		// a malformed one cannot be saved, and must not block the write
		// that replaces it.
		return
	}
	for _, m := range sibs {
		if m.Version.Tombstone == next.v.Tombstone && m.Version.Hash == next.v.Hash {
			continue // the resolution kept this content
		}
		c := ConflictRecord{Key: r.key, Loser: m.Version, Body: m.Body, Winner: next.id, Reason: resolvedReason}
		id := m.Version.ID()
		_ = b.Set(append(conflictPrefix(r.tenant, r.key), id[:]...), appendConflictValue(nil, &c), nil)
	}
}

// check evaluates a Put's or Delete's precondition against c; see the
// comment on tableOpen for the rules over a sibling set.
func (c *current) check(r *request) error {
	if !c.v.Siblings || r.bulk {
		return r.pre.Check(c.etag, c.live())
	}
	sibs, err := doc.DecodeSiblings(c.set)
	if err != nil {
		return fault.E(fault.Corruption, fault.Context{}, err)
	}
	named := false
	for _, t := range r.pre.IfMatch {
		named = named || t == c.etag || slices.ContainsFunc(sibs, func(s doc.Sibling) bool { return s.Version.ETag() == t })
	}
	switch {
	case named:
		pre := r.pre
		pre.IfMatch = nil // matched; If-None-Match still applies
		return pre.Check(c.etag, true)
	case len(r.pre.IfMatch) == 0 || slices.Equal(r.pre.IfMatch, []string{"*"}):
		return doc.ConflictError("", "", "", c.etag, c.set)
	}
	return r.pre.Check(c.etag, true)
}

// Siblings streams tenant's documents that hold open siblings, sorted by
// key: their records, Body the sibling set (doc.DecodeSiblings). Prefix,
// After and Limit select as for List; Tombstones and KeysOnly are ignored.
// The index and the documents are read from one snapshot.
func (s *Store) Siblings(ctx context.Context, tenant string, o ListOptions) iter.Seq2[Record, error] {
	const op = "store.siblings"
	return func(yield func(Record, error) bool) {
		if err := doc.ValidateTenant(tenant); err != nil {
			yield(Record{}, fault.E(fault.Invalid, fault.Context{Op: op}, err))
			return
		}
		fail := func(err error) { yield(Record{}, wrap(op, tenant, "", err)) }
		if err := s.acquire(); err != nil {
			fail(err)
			return
		}
		defer s.release()
		lower := openKey(tenant, o.Prefix)
		upper := prefixEnd(lower)
		if o.After != "" {
			if a := openKey(tenant, o.After+"\x00"); bytes.Compare(a, lower) > 0 {
				lower = a
			}
		}
		snap := s.db.NewSnapshot()
		defer snap.Close()
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			fail(err)
			return
		}
		defer it.Close()
		skip := len(tenantPrefix(tableOpen, tenant))
		n := 0
		for valid := it.First(); valid && (o.Limit <= 0 || n < o.Limit); valid = it.Next() {
			if err := ctx.Err(); err != nil {
				fail(err)
				return
			}
			key := string(it.Key()[skip:])
			rec, ok, err := getRecord(snap, tenant, key)
			if err == nil && ok {
				err = s.waitDurable(ctx, rec.Seq)
			}
			if err != nil {
				fail(err)
				return
			}
			if !ok || !rec.Version.Siblings {
				continue // cannot happen: the index is written with the document
			}
			n++
			if !yield(rec, nil) {
				return
			}
		}
		if err := it.Error(); err != nil {
			fail(err)
		}
	}
}

func getRecord(r pebble.Reader, tenant, key string) (Record, bool, error) {
	val, closer, err := r.Get(docKey(tenant, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	defer closer.Close()
	rec, err := makeRecord(tenant, key, val, true, true)
	return rec, err == nil, err
}
