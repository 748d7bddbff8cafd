// Package fs is the local-directory backend: one file per object, in
// leaf directories that each hold one range of a tenant's keys, so that a
// listing reads only the leaves its page covers and a full listing of N
// keys reads every directory entry about twice (O(N) in all, one or two
// leaves in memory at a time), however many keys a tenant has.
//
// # Layout
//
//	<root>/.layout                  "cairn-fs 2": the layout's version
//	<root>/.tmp/                    writes in progress
//	<root>/.locks/<tenant>          the tenant's lock file
//	<root>/<tenant>/index           the tenant's leaves, by lower bound
//	<root>/<tenant>/L<16 hex>/<name>  one object
//
// The index is a text file: the line "cairn-fs-index 1", then one line per
// leaf, "<leaf directory> <lower bound>", the lower bound being an escaped
// key (backend.EscapeKey, which preserves order; "" for the first leaf), in
// ascending order. A leaf holds the keys from its bound up to the next
// leaf's. An object's name is its escaped key, or, when that is longer than
// 240 bytes (NAME_MAX is 255), "~L" and 32 hex digits of a hash of it,
// which no escaped key can be; the key is then read from the object's
// header. Escaping keeps every name inside its leaf (no '/', no "." or
// "..").
//
// A leaf that grows past 2048 objects is split in two under the tenant's
// lock: the upper half is hard-linked into a new leaf, the index is
// replaced (write, fsync, rename) by one naming the new leaf, then the upper
// half is unlinked from the old leaf. Readers take no lock: a reader that
// used the old index and finds the file gone sees the index changed and
// reads it again. Leaves are never merged: deleting keys leaves small or
// empty leaves behind.
//
// This layout replaced one file per key directly under <root>/<tenant>/,
// whose listing read the whole tenant directory for every page (quadratic
// in the tenant's size). Open refuses a root in that older layout (objects
// but no .layout file): there is no conversion; there were no users.
//
// # Writes
//
// A write goes to a temporary file in <root>/.tmp, is fsynced, then — under
// the tenant's lock — the precondition is checked against the current file
// and the temporary file is renamed over it; after the lock is released the
// leaf directory is fsynced, before Put returns. A reader sees the old or
// the new object, never a mix.
//
// # Locking
//
// Preconditions must hold across processes sharing a root, so the lock is
// flock(2) on <root>/.locks/<tenant>, taken for every write, delete and
// split of the tenant (unconditional writes too: otherwise one could land
// between another writer's check and its rename, and that writer's
// if-match would have been checked against a version it then silently
// replaced). Each operation opens its own descriptor, so goroutines of one
// process exclude each other the same way processes do. Only the check, the
// rename and a split run under the lock; writing and fsyncing the data does
// not. Each process caches parsed indexes (one stat per operation tells
// whether the file changed) and, as a hint for when to split, the size of
// the leaves it wrote to.
//
// # Sharp edges
//
// A listing learns each listed file's ETag and size from an extended
// attribute the write set on it (user.cairn.etag, Linux; a stat and a
// getxattr per entry), believed only while the file keeps the inode and
// modification time it records, or else from the file's header (open and
// read; the attribute is then recorded again, which changes the file's
// ctime, and on a backend this process may not write, such as a read-only
// mount, fails, so that every listing opens every file); the leaves a page
// covers are read whole. The ETag is the header's, so damage to an
// object's body does not change it: Get verifies the content. Entries a
// leaf holds that cannot be objects (directories, names no key escapes to)
// are ignored. A hashed object whose header is damaged is left out of
// listings (its key is unknown); Get by its key reports the damage. One
// that cannot be read (an I/O error) fails the listing, or the split,
// which then fails the Put that started it although that Put's object was
// written. Temporary files of a process that crashed mid-write stay in
// <root>/.tmp, and a split that crashed can leave an unreferenced leaf, or
// stale links in the old leaf (never read; removed by that leaf's next
// split). The root must be on a case-sensitive file system (keys "A" and
// "a" are different files) that supports hard links.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

var (
	_ backend.Backend      = (*FS)(nil)
	_ backend.Corrupter    = (*FS)(nil)
	_ backend.TenantLister = (*FS)(nil)
)

// FS is a backend storing objects as files under a root directory.
type FS struct {
	name    string
	root    string
	leafMax int
	noSync  bool
	// afterIndex, if set, runs in unlocked reads between reading the index
	// and opening the file (tests move the file there).
	afterIndex func()
	// afterLeaf, if set, runs in List after a leaf was read and found
	// current, before its objects' entries are read (tests split it there).
	afterLeaf func()

	mu      sync.Mutex        // guards the following
	indexes map[string]*index // tenant → the last index read
	counts  map[string]int    // "tenant/leaf" → objects in it (a hint, see noteCreatedLocked)
}

const (
	tmpDir     = ".tmp"
	lockDir    = ".locks"
	layoutFile = ".layout"
	layout     = "cairn-fs 2\n"
	// headerRead is how much of a file Stat and List read for the header;
	// a header with a larger version vector is read whole.
	headerRead = 4096
)

// Options are OpenWith's settings; the zero value is Open's.
type Options struct {
	// NoSync skips every fsync: a write survives the process crashing but
	// not the machine (the operating system may lose it, or its directory
	// entry). For bulk loads and benchmarks, never for a replica that
	// counts.
	NoSync bool
}

// Open returns the backend called name storing under root, creating root
// and its internal directories if needed. The error is fault.Config, also
// for a root in another layout (see the package documentation).
func Open(name, root string) (*FS, error) { return OpenWith(name, root, Options{}) }

// OpenWith is Open with options.
func OpenWith(name, root string, o Options) (*FS, error) {
	ctx := backend.Ctx("backend.open", name, "", "")
	if root == "" {
		return nil, fault.New(fault.Config, ctx, "fs backend: empty root directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fault.E(fault.Config, ctx, fmt.Errorf("fs backend root %q: %w", root, err))
	}
	for _, d := range []string{abs, filepath.Join(abs, tmpDir), filepath.Join(abs, lockDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fault.E(fault.Config, ctx, fmt.Errorf("fs backend root %q: %w", root, err))
		}
	}
	f := &FS{name: name, root: abs, leafMax: defaultLeafMax, noSync: o.NoSync, indexes: map[string]*index{}, counts: map[string]int{}}
	if err := f.checkLayout(); err != nil {
		return nil, fault.E(fault.Config, ctx, fmt.Errorf("fs backend root %q: %w", root, err))
	}
	return f, nil
}

// checkLayout accepts a root marked with this layout, and marks a root
// that holds no tenant yet.
func (f *FS) checkLayout() error {
	raw, err := os.ReadFile(filepath.Join(f.root, layoutFile))
	if err == nil {
		if string(raw) != layout {
			return fmt.Errorf("unknown layout %q in %s", raw, layoutFile)
		}
		return nil
	}
	if !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	ents, err := os.ReadDir(f.root)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if n := e.Name(); n != tmpDir && n != lockDir && n != layoutFile {
			// Another process may have marked the root and written
			// since the marker was read: look once more.
			if raw, err := os.ReadFile(filepath.Join(f.root, layoutFile)); err == nil && string(raw) == layout {
				return nil
			}
			return fmt.Errorf("holds %q but no %s: objects of the older one-file-per-key layout, which this version cannot read (move them away)", n, layoutFile)
		}
	}
	return f.markLayout()
}

// Name implements backend.Backend.
func (f *FS) Name() string { return f.name }

// Root is the root directory.
func (f *FS) Root() string { return f.root }

// Tenants implements backend.TenantLister: the tenant directories under
// the root (a tenant's directory appears with its first object and is
// never removed). Names that are not tenants (.tmp, .locks, .layout) are
// not listed.
func (f *FS) Tenants(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, f.fail(backend.OpTenants, "", "", err)
	}
	ents, err := os.ReadDir(f.root)
	if err != nil {
		return nil, f.fail(backend.OpTenants, "", "", err)
	}
	var ts []string
	for _, e := range ents {
		if e.IsDir() && doc.ValidateTenant(e.Name()) == nil {
			ts = append(ts, e.Name())
		}
	}
	return ts, nil // ReadDir sorts by name
}

// Path returns the file that holds (tenant, key) now, for tests and tools
// ("" when the tenant has no objects). Tenant and key must be valid.
func (f *FS) Path(tenant, key string) (string, error) {
	ix, err := f.loadIndex(tenant)
	if err != nil {
		return "", err
	}
	return f.locate(tenant, ix, key), nil
}

func (f *FS) fail(op, tenant, key string, err error) error {
	return fault.E(fault.Unknown, backend.Ctx(op, f.name, tenant, key), err)
}

// Get implements backend.Backend.
func (f *FS) Get(ctx context.Context, tenant, key string) (*backend.Object, error) {
	if err := begin(ctx, tenant, key); err != nil {
		return nil, f.fail(backend.OpGet, tenant, key, err)
	}
	var raw []byte
	err := f.read(tenant, key, func(path string) (err error) {
		raw, err = readFile(path)
		return err
	})
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

// notFound turns ENOENT (and ENOTDIR, met in a damaged tree) into
// fault.NotFound.
func notFound(err error) error {
	if errors.Is(err, iofs.ErrNotExist) {
		return fault.E(fault.NotFound, fault.Context{}, errors.New("no object"))
	}
	return err
}

// entry reads the header of the file at path (already open as fh) for its
// ETag. A damaged header gives the ETag of the whole file, as
// backend.ETagOf does, so that it still changes when the file is replaced.
// A file shorter than headerRead (a small document) is read whole by the
// first read, which then also tells its size: no stat.
func entry(fh *os.File, key string) (backend.Entry, error) {
	before, stamped := stampOf(fh) // before the read: see refreshETagAttr
	buf := make([]byte, headerRead)
	n, err := fh.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return backend.Entry{}, err
	}
	buf, size := buf[:n], int64(n)
	if n == headerRead {
		fi, err := fh.Stat()
		if err != nil {
			return backend.Entry{}, err
		}
		size = fi.Size()
	}
	h, err := backend.ParseHeader(buf)
	if err != nil {
		if size > int64(len(buf)) && size <= backend.MaxObjectSize {
			buf = make([]byte, size)
			if n, err := fh.ReadAt(buf, 0); n < len(buf) {
				return backend.Entry{}, err
			}
		}
		return backend.Entry{Key: key, ETag: backend.ETagOf(buf), Size: size}, nil
	}
	if stamped {
		refreshETagAttr(fh, h.ETag(), size, before)
	}
	return backend.Entry{Key: key, ETag: h.ETag(), Size: size}, nil
}

func statFile(path, key string) (backend.Entry, error) {
	if etag, size, ok, err := etagAttrOf(path); ok || err != nil {
		return backend.Entry{Key: key, ETag: etag, Size: size}, err
	}
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
	var e backend.Entry
	err := f.read(tenant, key, func(path string) (err error) {
		e, err = statFile(path, key)
		return err
	})
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
	if h, err := backend.ParseHeader(raw); err == nil {
		setETagAttr(tmp, h.ETag(), int64(len(raw)))
	}

	var leafDir string
	err = f.withLock(tenant, func() error {
		ix, err := f.indexForWriteLocked(tenant)
		if err != nil {
			return err
		}
		i := ix.find(backend.EscapeKey(key))
		path := f.locate(tenant, ix, key)
		leafDir = filepath.Dir(path)
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
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
		if exists {
			return nil
		}
		// The split fsyncs the leaves it changes, this rename's included.
		return f.noteCreatedLocked(tenant, ix, i)
	})
	if err != nil {
		return err
	}
	// Durability of the rename. (After a split the file may be in the new
	// leaf, which the split made durable; the old leaf's fsync is then
	// merely redundant.)
	return f.syncDir(leafDir)
}

func (f *FS) writeTemp(raw []byte) (string, error) {
	name, err := f.createTemp(raw)
	if errors.Is(err, iofs.ErrNotExist) && f.remake() == nil {
		name, err = f.createTemp(raw)
	}
	return name, err
}

// createTemp is writeTemp without remaking a root emptied under it.
func (f *FS) createTemp(raw []byte) (string, error) {
	fh, err := os.CreateTemp(filepath.Join(f.root, tmpDir), "put-*")
	if err != nil {
		return "", err
	}
	_, err = fh.Write(raw)
	if err == nil {
		if !f.noSync {
			err = fh.Sync()
		}
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

// remake makes the root's internal directories and layout marker again
// where they are gone: the root was emptied, or another empty volume
// mounted in its place, while this process had it open. Its writes then
// go on (the nodes' rounds upload again what the root lost) rather than
// failing for want of .tmp until the process restarts; and the marker
// keeps the next Open from taking what they write for the older layout.
// The root itself is not made: a root that is gone is not written to.
func (f *FS) remake() error {
	if _, err := os.Stat(f.root); err != nil {
		return err
	}
	for _, d := range []string{tmpDir, lockDir} {
		if err := os.Mkdir(filepath.Join(f.root, d), 0o700); err != nil && !errors.Is(err, iofs.ErrExist) {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(f.root, layoutFile)); !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	return f.markLayout()
}

// markLayout writes the root's layout marker.
func (f *FS) markLayout() error {
	tmp, err := f.createTemp([]byte(layout)) // not writeTemp, which calls remake
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, filepath.Join(f.root, layoutFile)); err != nil {
		return err
	}
	return f.syncDir(f.root)
}

// lock takes the cross-process lock named name, remaking the root's
// internal directories when they are gone (remake).
func (f *FS) lock(name string) (unlock func(), err error) {
	unlock, err = lockFile(filepath.Join(f.root, lockDir, name))
	if errors.Is(err, iofs.ErrNotExist) && f.remake() == nil {
		unlock, err = lockFile(filepath.Join(f.root, lockDir, name))
	}
	return unlock, err
}

func (f *FS) syncDir(dir string) error {
	if f.noSync {
		return nil
	}
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
	var removed string // the leaf directory changed
	err := f.withLock(tenant, func() error {
		ix, err := f.loadIndex(tenant)
		if err != nil {
			return err
		}
		path := f.locate(tenant, ix, key)
		if !pre.IsZero() {
			etag, exists, err := "", false, error(nil)
			if path != "" {
				etag, exists, err = current(path, key)
			}
			if err != nil {
				return err
			}
			if err := pre.Check(etag, exists); err != nil {
				return err
			}
		}
		if path == "" {
			return nil
		}
		if err := os.Remove(path); err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		removed = filepath.Dir(path)
		f.noteRemoved(tenant, filepath.Base(removed))
		return nil
	})
	if err == nil && removed != "" {
		err = f.syncDir(removed)
	}
	if err != nil {
		return f.fail(backend.OpDelete, tenant, key, err)
	}
	return nil
}

// Corrupt implements backend.Corrupter: it rewrites the file through f,
// atomically and under the tenant's lock, with no checks.
func (f *FS) Corrupt(ctx context.Context, tenant, key string, fn func([]byte) []byte) error {
	err := f.withLock(tenant, func() error {
		ix, err := f.loadIndex(tenant)
		if err != nil {
			return err
		}
		if ix == nil {
			return notFound(iofs.ErrNotExist)
		}
		path := f.locate(tenant, ix, key)
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
	unlock, err := f.lock(tenant)
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}
