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

var _ backend.Blobs = (*FS)(nil)

// Blobs live under <root>/_cairn as files named by their names ('/' makes
// directories), written like objects: a synced temporary file renamed
// into place under one cross-process lock (".locks/_cairn", which no
// tenant's lock can be called), then the directory synced.

func (f *FS) blobPath(name string) string {
	return filepath.Join(f.root, backend.BlobDir, filepath.FromSlash(name))
}

func (f *FS) blobFail(op, name string, err error) error {
	return fault.E(fault.Unknown, backend.Ctx(op, f.name, "", name), err)
}

func (f *FS) withBlobLock(fn func() error) error {
	unlock, err := f.lock(backend.BlobDir)
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}

// currentBlob returns the ETag of the blob at path and whether it exists:
// from the ETag attribute its write recorded, else by reading it.
func currentBlob(path string) (string, bool, error) {
	if etag, _, ok, err := etagAttrOf(path); ok || err != nil {
		if fault.ClassOf(err) == fault.NotFound {
			return "", false, nil
		}
		return etag, ok, err
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		return backend.BlobETag(data), true, nil
	case errors.Is(err, iofs.ErrNotExist):
		return "", false, nil
	}
	return "", false, err
}

// PutBlob implements backend.Blobs.
func (f *FS) PutBlob(ctx context.Context, name string, data []byte, pre backend.Precondition) (string, error) {
	err := backend.ValidateBlobName(name)
	if err == nil {
		if perr := pre.Check("", false); fault.ClassOf(perr) == fault.Invalid { // both conditions set
			err = perr
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return "", f.blobFail(backend.OpPutBlob, name, err)
	}
	path := f.blobPath(name)
	tmp, err := f.writeTemp(data)
	if err != nil {
		return "", f.blobFail(backend.OpPutBlob, name, err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	etag := backend.BlobETag(data)
	setETagAttr(tmp, etag, int64(len(data)))
	err = f.withBlobLock(func() error {
		etag, exists, err := currentBlob(path)
		if err != nil {
			return err
		}
		if err := pre.Check(etag, exists); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f.mkdirs(filepath.Dir(path)); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
		return f.syncDir(filepath.Dir(path))
	})
	if err != nil {
		return "", f.blobFail(backend.OpPutBlob, name, err)
	}
	return etag, nil
}

// mkdirs creates dir and the missing directories above it, syncing each
// parent whose entries changed, so that a renamed file's path survives a
// crash.
func (f *FS) mkdirs(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := f.mkdirs(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, iofs.ErrExist) {
		return err
	}
	return f.syncDir(filepath.Dir(dir))
}

// removeEmptyDirs removes dir and the directories above it, up to the blobs'
// root, while they are empty: a blob's directories would otherwise stay
// after its last blob was deleted (a pruned pack generation's, one a pack
// interval), and every listing would walk them. It runs under the blob
// lock, as mkdirs does, so no put is making one of them meanwhile.
func (f *FS) removeEmptyDirs(dir string) error {
	root := filepath.Join(f.root, backend.BlobDir)
	for dir != root && strings.HasPrefix(dir, root+string(filepath.Separator)) {
		if err := os.Remove(dir); err != nil {
			return nil // not empty (or gone): the rest stays
		}
		if err := f.syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
		dir = filepath.Dir(dir)
	}
	return nil
}

// GetBlob implements backend.Blobs.
func (f *FS) GetBlob(ctx context.Context, name string) ([]byte, string, error) {
	err := backend.ValidateBlobName(name)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, "", f.blobFail(backend.OpGetBlob, name, err)
	}
	data, err := os.ReadFile(f.blobPath(name))
	if err != nil {
		return nil, "", f.blobFail(backend.OpGetBlob, name, notFound(err))
	}
	return data, backend.BlobETag(data), nil
}

// ListBlobs implements backend.Blobs. It reads the directory tree below
// the prefix's last '/' and sorts it, so a listing costs the size of that
// subtree, not of the page: keep each subtree small (a node's feed, one
// pack generation).
func (f *FS) ListBlobs(ctx context.Context, prefix, startAfter string, limit int) (backend.Page, error) {
	err := backend.ValidateBlobPrefix(prefix)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return backend.Page{}, f.blobFail(backend.OpListBlobs, "", err)
	}
	if limit <= 0 {
		limit = backend.DefaultLimit
	}
	dir := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir = prefix[:i]
	}
	base := filepath.Join(f.root, backend.BlobDir)
	var names []string
	err = filepath.WalkDir(filepath.Join(base, filepath.FromSlash(dir)), func(path string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(base, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if strings.HasPrefix(name, prefix) && name > startAfter {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return backend.Page{}, f.blobFail(backend.OpListBlobs, "", err)
	}
	slices.Sort(names)
	var p backend.Page
	if len(names) > limit {
		names, p.More = names[:limit], true
	}
	for _, n := range names {
		path := f.blobPath(n)
		etag, exists, err := currentBlob(path)
		if err != nil {
			return backend.Page{}, f.blobFail(backend.OpListBlobs, "", err)
		}
		if !exists {
			continue // deleted since the walk
		}
		var size int64
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		p.Entries = append(p.Entries, backend.Entry{Key: n, ETag: etag, Size: size})
	}
	return p, nil
}

// DeleteBlob implements backend.Blobs.
func (f *FS) DeleteBlob(ctx context.Context, name string, pre backend.Precondition) error {
	err := backend.ValidateBlobName(name)
	if err == nil && pre.IfNoneMatch {
		err = fault.New(fault.Invalid, fault.Context{}, "if-none-match on a delete")
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return f.blobFail(backend.OpDeleteBlob, name, err)
	}
	path := f.blobPath(name)
	err = f.withBlobLock(func() error {
		if !pre.IsZero() {
			etag, exists, err := currentBlob(path)
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
		if err := f.syncDir(filepath.Dir(path)); err != nil {
			return err
		}
		return f.removeEmptyDirs(filepath.Dir(path))
	})
	if err != nil {
		return f.blobFail(backend.OpDeleteBlob, name, err)
	}
	return nil
}
