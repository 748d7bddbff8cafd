// Package fs is the local-directory backend: one file per object under
// <root>/<tenant>/, named by backend.KeyPath with no chunk limit, so every
// key keeps its byte order on disk and no key can name a path outside its
// tenant's directory.
//
// # Writes
//
// A write goes to a temporary file in <root>/.tmp, is fsynced, then — under
// the tenant's lock — the precondition is checked against the current file
// and the temporary file is renamed over it; after the lock is released the
// parent directory (and any directory the write created) is fsynced, before
// Put returns. A reader sees the old or the new object, never a mix.
//
// # Locking
//
// Preconditions must hold across processes sharing a root, so the lock is
// flock(2) on <root>/.locks/<tenant>, taken for every write and delete of
// the tenant (unconditional writes too: otherwise one could land between
// another writer's check and its rename, and that writer's if-match would
// have been checked against a version it then silently replaced). Each
// operation opens its own descriptor, so goroutines of one process exclude
// each other the same way processes do. Only the check and the rename run
// under the lock; writing and fsyncing the data does not.
//
// # Sharp edges
//
// A listing reads each listed file's header for its ETag: a page of n
// entries is n small reads, and each page reads its whole directory (files
// in one tenant directory are not indexed). Temporary files of a process
// that crashed mid-write stay in <root>/.tmp. The root must be on a
// case-sensitive file system (keys "A" and "a" are different files), and
// its path short enough that root + the longest key path (about 3.2 KB)
// stays under PATH_MAX.
package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

var (
	_ backend.Backend   = (*FS)(nil)
	_ backend.Corrupter = (*FS)(nil)
)

// FS is a backend storing objects as files under a root directory.
type FS struct {
	name string
	root string
}

const (
	tmpDir  = ".tmp"
	lockDir = ".locks"
	// headerRead is how much of a file Stat and List read for the header;
	// a header with a larger version vector is read whole.
	headerRead = 4096
)

// Open returns the backend called name storing under root, creating root
// and its internal directories if needed. The error is fault.Config.
func Open(name, root string) (*FS, error) {
	ctx := backend.Ctx("backend.open", name, "", "")
	if root == "" {
		return nil, fault.New(fault.Config, ctx, "fs backend: empty root directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fault.E(fault.Config, ctx, fmt.Errorf("fs backend root %q: %w", root, err))
	}
	for _, d := range []string{abs, filepath.Join(abs, tmpDir), filepath.Join(abs, lockDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fault.E(fault.Config, ctx, fmt.Errorf("fs backend root %q: %w", root, err))
		}
	}
	return &FS{name: name, root: abs}, nil
}

// Name implements backend.Backend.
func (f *FS) Name() string { return f.name }

// Root is the root directory.
func (f *FS) Root() string { return f.root }

// Path returns the file that holds (tenant, key), for tests and tools.
// Tenant and key must be valid.
func (f *FS) Path(tenant, key string) string {
	p, _ := backend.KeyPath(key, 0)
	return filepath.Join(f.root, tenant, filepath.FromSlash(p))
}

func (f *FS) fail(op, tenant, key string, err error) error {
	return fault.E(fault.Unknown, backend.Ctx(op, f.name, tenant, key), err)
}

// Get implements backend.Backend.
func (f *FS) Get(ctx context.Context, tenant, key string) (*backend.Object, error) {
	if err := begin(ctx, tenant, key); err != nil {
		return nil, f.fail(backend.OpGet, tenant, key, err)
	}
	raw, err := readFile(f.Path(tenant, key))
	if err != nil {
		return nil, f.fail(backend.OpGet, tenant, key, err)
	}
	o, err := backend.VerifyObject(raw, tenant, key, "")
	if err != nil {
		return nil, f.fail(backend.OpGet, tenant, key, err)
	}
	return o, nil
}

func begin(ctx context.Context, tenant, key string) error {
	if err := backend.CheckNames(tenant, key); err != nil {
		return err
	}
	return ctx.Err()
}

// readFile reads a whole object, refusing one larger than any object
// cairn writes (a damaged or foreign file).
func readFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, notFound(err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > backend.MaxObjectSize {
		return nil, fault.New(fault.Corruption, fault.Context{}, fmt.Sprintf("object file is %d bytes, over the %d limit", fi.Size(), backend.MaxObjectSize))
	}
	raw := make([]byte, fi.Size())
	n, err := fh.ReadAt(raw, 0)
	if n == len(raw) {
		err = nil
	}
	return raw[:n], err
}

// notFound turns ENOENT (and ENOTDIR, met when a chunk directory on the
// way is missing in a damaged tree) into fault.NotFound.
func notFound(err error) error {
	if errors.Is(err, iofs.ErrNotExist) {
		return fault.E(fault.NotFound, fault.Context{}, errors.New("no object"))
	}
	return err
}

// entry reads the header of the file at path (already open as fh) for its
// ETag. A damaged header gives the ETag of the whole file, as
// backend.ETagOf does, so that it still changes when the file is replaced.
func entry(fh *os.File, key string) (backend.Entry, error) {
	fi, err := fh.Stat()
	if err != nil {
		return backend.Entry{}, err
	}
	buf := make([]byte, min(fi.Size(), headerRead))
	n, err := fh.ReadAt(buf, 0)
	if n < len(buf) {
		return backend.Entry{}, err
	}
	h, err := backend.ParseHeader(buf)
	if err != nil {
		if fi.Size() > int64(len(buf)) && fi.Size() <= backend.MaxObjectSize {
			buf = make([]byte, fi.Size())
			if n, err := fh.ReadAt(buf, 0); n < len(buf) {
				return backend.Entry{}, err
			}
		}
		return backend.Entry{Key: key, ETag: backend.ETagOf(buf), Size: fi.Size()}, nil
	}
	return backend.Entry{Key: key, ETag: h.ETag(), Size: fi.Size()}, nil
}

func statFile(path, key string) (backend.Entry, error) {
	fh, err := os.Open(path)
	if err != nil {
		return backend.Entry{}, notFound(err)
	}
	defer fh.Close()
	return entry(fh, key)
}

// Stat implements backend.Backend.
func (f *FS) Stat(ctx context.Context, tenant, key string) (backend.Entry, error) {
	if err := begin(ctx, tenant, key); err != nil {
		return backend.Entry{}, f.fail(backend.OpStat, tenant, key, err)
	}
	e, err := statFile(f.Path(tenant, key), key)
	if err != nil {
		return backend.Entry{}, f.fail(backend.OpStat, tenant, key, err)
	}
	return e, nil
}

// current returns the ETag of the file at path and whether it exists.
func current(path, key string) (string, bool, error) {
	e, err := statFile(path, key)
	switch {
	case err == nil:
		return e.ETag, true, nil
	case fault.ClassOf(err) == fault.NotFound:
		return "", false, nil
	}
	return "", false, err
}

// Put implements backend.Backend.
func (f *FS) Put(ctx context.Context, tenant, key string, v doc.Version, body []byte, pre backend.Precondition) (string, error) {
	if err := backend.CheckPut(tenant, key, &v, body); err != nil {
		return "", f.fail(backend.OpPut, tenant, key, err)
	}
	if err := pre.Check("", false); fault.ClassOf(err) == fault.Invalid { // both conditions set
		return "", f.fail(backend.OpPut, tenant, key, err)
	}
	if err := ctx.Err(); err != nil {
		return "", f.fail(backend.OpPut, tenant, key, err)
	}
	raw := backend.EncodeObject(tenant, key, &v, body)
	if err := f.replace(ctx, tenant, key, raw, pre); err != nil {
		return "", f.fail(backend.OpPut, tenant, key, err)
	}
	h, _ := backend.ParseHeader(raw)
	return h.ETag(), nil
}

// replace writes raw as the object for (tenant, key) if pre holds; see the
// package documentation for the steps.
func (f *FS) replace(ctx context.Context, tenant, key string, raw []byte, pre backend.Precondition) error {
	tmp, err := f.writeTemp(raw)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // a no-op once renamed

	path := f.Path(tenant, key)
	var created []string
	err = f.withLock(tenant, func() error {
		etag, exists, err := current(path, key)
		if err != nil {
			return err
		}
		if err := pre.Check(etag, exists); err != nil {
			return err
		}
		// Checked under the lock, last: a caller that gave up before the
		// rename gets an error and the object is unchanged.
		if err := ctx.Err(); err != nil {
			return err
		}
		if created, err = f.mkdirs(tenant, filepath.Dir(path)); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	})
	if err != nil {
		return err
	}
	// Durability of the rename, and of every directory entry it needed.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	for _, d := range created {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func (f *FS) writeTemp(raw []byte) (string, error) {
	fh, err := os.CreateTemp(filepath.Join(f.root, tmpDir), "put-*")
	if err != nil {
		return "", err
	}
	_, err = fh.Write(raw)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(fh.Name())
		return "", err
	}
	return fh.Name(), nil
}

// mkdirs creates dir (inside the tenant's directory) and its missing
// parents, returning the ones it created, outermost first.
func (f *FS) mkdirs(tenant, dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, iofs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if d == filepath.Join(f.root, tenant) {
			break
		}
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, iofs.ErrExist) {
			return created, err
		}
		created = append(created, missing[i])
	}
	return created, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Delete implements backend.Backend.
func (f *FS) Delete(ctx context.Context, tenant, key string, pre backend.Precondition) error {
	if err := begin(ctx, tenant, key); err != nil {
		return f.fail(backend.OpDelete, tenant, key, err)
	}
	if pre.IfNoneMatch {
		return fault.New(fault.Invalid, backend.Ctx(backend.OpDelete, f.name, tenant, key), "if-none-match on a delete")
	}
	path := f.Path(tenant, key)
	var removed bool
	var changed string // the deepest directory left after the removal
	err := f.withLock(tenant, func() error {
		if !pre.IsZero() {
			etag, exists, err := current(path, key)
			if err != nil {
				return err
			}
			if err := pre.Check(etag, exists); err != nil {
				return err
			}
		}
		if err := os.Remove(path); err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		removed = true
		// Empty chunk directories go too, under the lock, so that no Put is
		// between its mkdirs and its rename. A non-empty one stops the climb;
		// it holds the last removal, so it is the directory to fsync.
		tdir := filepath.Join(f.root, tenant)
		changed = filepath.Dir(path)
		for d := changed; d != tdir && strings.HasPrefix(d, tdir); d = filepath.Dir(d) {
			if os.Remove(d) != nil {
				break
			}
			changed = filepath.Dir(d)
		}
		return nil
	})
	if err == nil && removed {
		err = syncDir(changed)
	}
	if err != nil {
		return f.fail(backend.OpDelete, tenant, key, err)
	}
	return nil
}

// Corrupt implements backend.Corrupter: it rewrites the file through f,
// atomically and under the tenant's lock, with no checks.
func (f *FS) Corrupt(ctx context.Context, tenant, key string, fn func([]byte) []byte) error {
	path := f.Path(tenant, key)
	err := f.withLock(tenant, func() error {
		raw, err := os.ReadFile(path)
		if err != nil {
			return notFound(err)
		}
		tmp, err := f.writeTemp(fn(raw))
		if err != nil {
			return err
		}
		return os.Rename(tmp, path)
	})
	return f.fail("backend.corrupt", tenant, key, err)
}

// withLock runs fn holding the tenant's cross-process lock.
func (f *FS) withLock(tenant string, fn func() error) error {
	unlock, err := lockFile(filepath.Join(f.root, lockDir, tenant))
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}
