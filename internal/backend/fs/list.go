package fs

import (
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
)

// List implements backend.Backend. It walks the tenant's directory depth
// first with each directory's entries sorted by name, which visits the
// paths in byte order (a file name is at most backend.Chunk bytes and a
// directory name exactly one byte more, so a file never sorts after a
// directory it is a prefix of), and byte order of paths is byte order of
// keys (backend.KeyPath). Subtrees entirely before the cursor or outside
// the prefix are not read.
func (f *FS) List(ctx context.Context, tenant string, opts backend.ListOptions) (backend.Page, error) {
	if err := backend.CheckTenant(tenant); err != nil {
		return backend.Page{}, f.fail(backend.OpList, tenant, "", err)
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = backend.DefaultLimit
	}
	w := walker{ctx: ctx, dir: filepath.Join(f.root, tenant), limit: limit}
	w.prefix, _ = backend.PrefixPath(opts.Prefix, 0)
	if opts.StartAfter != "" {
		w.after, _ = backend.KeyPath(opts.StartAfter, 0)
	}
	err := w.walk("")
	if errors.Is(err, errFull) {
		w.page.More, err = true, nil
	}
	if err != nil {
		return backend.Page{}, f.fail(backend.OpList, tenant, "", err)
	}
	return w.page, nil
}

var errFull = errors.New("page full")

type walker struct {
	ctx    context.Context
	dir    string // the tenant's directory
	prefix string // paths must start with it
	after  string // paths must be greater than it
	limit  int
	page   backend.Page
}

// walk lists the directory rel ("" or ending in "/") under the tenant's.
func (w *walker) walk(rel string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	ents, err := os.ReadDir(filepath.Join(w.dir, filepath.FromSlash(rel)))
	if err != nil {
		if rel == "" && errors.Is(err, iofs.ErrNotExist) {
			return nil // a tenant with no objects yet
		}
		return err
	}
	for _, e := range ents {
		p := rel + e.Name()
		if e.IsDir() {
			d := p + "/"
			inPrefix := strings.HasPrefix(d, w.prefix) || strings.HasPrefix(w.prefix, d)
			before := d < w.after && !strings.HasPrefix(w.after, d) // every path inside is ≤ after
			if !inPrefix || before {
				continue
			}
			if err := w.walk(d); err != nil {
				return err
			}
			continue
		}
		if !strings.HasPrefix(p, w.prefix) || p <= w.after {
			continue
		}
		if err := w.add(p); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) add(p string) error {
	key, _, err := backend.ParsePath(p, 0)
	if err != nil {
		return fault.E(fault.Corruption, fault.Context{}, err)
	}
	if len(w.page.Entries) == w.limit {
		return errFull
	}
	fh, err := os.Open(filepath.Join(w.dir, filepath.FromSlash(p)))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil // deleted since the directory was read
	}
	if err != nil {
		return err
	}
	defer fh.Close()
	e, err := entry(fh, key)
	if err != nil {
		return err
	}
	w.page.Entries = append(w.page.Entries, e)
	return nil
}
