package fs

import (
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
)

// List implements backend.Backend. It reads the index, then the leaves
// from the one whose range holds the first candidate (the cursor or the
// prefix), each whole and sorted by escaped key (which is key order, see
// backend.EscapeKey), until the page is full or the leaves leave the
// prefix. A page thus reads one or two leaves, and a full listing reads
// each leaf about twice, however many keys the tenant has.
//
// A leaf is used only if the index did not change while it was read: a
// split that finished meanwhile may have unlinked part of it, and the
// listing then reads the new index and goes on from where it was. So does
// a listing that finds an object gone while the index changed: a split that
// finished after the check unlinked it from this leaf, and it is in the
// new one.
func (f *FS) List(ctx context.Context, tenant string, opts backend.ListOptions) (backend.Page, error) {
	if err := backend.CheckTenant(tenant); err != nil {
		return backend.Page{}, f.fail(backend.OpList, tenant, "", err)
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = backend.DefaultLimit
	}
	page, err := f.list(ctx, tenant, backend.EscapeKey(opts.Prefix), backend.EscapeKey(opts.StartAfter), limit)
	if err != nil {
		return backend.Page{}, f.fail(backend.OpList, tenant, "", err)
	}
	return page, nil
}

// list lists escaped keys with prefix pp after the escaped cursor after.
func (f *FS) list(ctx context.Context, tenant, pp, after string, limit int) (backend.Page, error) {
	var page backend.Page
	ix, err := f.loadIndex(tenant)
	if ix == nil || err != nil {
		return page, err // nil index: a tenant with no objects yet
	}
	for i := ix.find(max(after, pp)); i < len(ix.leaves); {
		if err := ctx.Err(); err != nil {
			return page, err
		}
		if lo := ix.leaves[i].lo; lo > pp && !strings.HasPrefix(lo, pp) {
			break // this leaf and all after it are past the prefix
		}
		dir := filepath.Join(f.tenantDir(tenant), ix.leaves[i].dir)
		items, err := readLeaf(dir)
		if err != nil {
			return page, err
		}
		if moved, err := f.changed(tenant, ix); err != nil || moved {
			if err != nil {
				return page, err
			}
			if ix, err = f.loadIndex(tenant); ix == nil || err != nil {
				return page, err
			}
			i = ix.find(max(after, pp))
			continue
		}
		if f.afterLeaf != nil {
			f.afterLeaf()
		}
		items = slices.DeleteFunc(items, func(it leafItem) bool {
			return !ix.inRange(i, it.enc) || it.enc <= after || !strings.HasPrefix(it.enc, pp)
		})
		slices.SortFunc(items, func(a, b leafItem) int { return strings.Compare(a.enc, b.enc) })
		moved := false
		for _, it := range items {
			if len(page.Entries) == limit {
				page.More = true
				return page, nil
			}
			e, ok, err := listEntry(filepath.Join(dir, it.name), it)
			if err != nil {
				return page, err
			}
			if !ok {
				// Gone since the leaf was read: deleted, or moved by a
				// split that finished after the check above (its step 3
				// unlinks the upper half of this leaf). A split changes
				// the index before it unlinks, so if the index is the
				// same the object was deleted; otherwise go on from the
				// last key handled, under the new index, or the rest of
				// the moved half would be skipped.
				if moved, err = f.changed(tenant, ix); err != nil {
					return page, err
				}
				if moved {
					break
				}
				after = it.enc
				continue
			}
			page.Entries = append(page.Entries, e)
			after = it.enc
		}
		if moved {
			if ix, err = f.loadIndex(tenant); ix == nil || err != nil {
				return page, err
			}
			i = ix.find(max(after, pp))
			continue
		}
		i++
	}
	return page, nil
}

// listEntry reads the entry of one listed file; ok is false when it was
// deleted since its leaf was read.
func listEntry(path string, it leafItem) (backend.Entry, bool, error) {
	key, err := backend.UnescapeKey(it.enc)
	if err != nil {
		return backend.Entry{}, false, fault.E(fault.Corruption, fault.Context{}, err) // a foreign file in a leaf
	}
	etag, size, ok, err := etagAttrOf(path)
	switch {
	case ok:
		return backend.Entry{Key: key, ETag: etag, Size: size}, true, nil
	case fault.ClassOf(err) == fault.NotFound:
		return backend.Entry{}, false, nil // deleted since its leaf was read
	case err != nil:
		return backend.Entry{}, false, err
	}
	fh, err := os.Open(path)
	if errors.Is(err, iofs.ErrNotExist) {
		return backend.Entry{}, false, nil
	}
	if err != nil {
		return backend.Entry{}, false, err
	}
	defer fh.Close()
	e, err := entry(fh, key)
	return e, err == nil, err
}
