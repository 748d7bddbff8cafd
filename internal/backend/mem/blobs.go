package mem

import (
	"context"
	"slices"
	"strings"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
)

// PutBlob implements backend.Blobs.
func (m *Mem) PutBlob(ctx context.Context, name string, data []byte, pre backend.Precondition) (string, error) {
	if err := m.begin(ctx, backend.OpPutBlob, "", name); err != nil {
		return "", m.wrap(backend.OpPutBlob, "", name, err)
	}
	if err := pre.Check("", false); fault.ClassOf(err) == fault.Invalid {
		return "", m.wrap(backend.OpPutBlob, "", name, err)
	}
	data = slices.Clone(data)
	etag := backend.BlobETag(data)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkBlobLocked(name, pre); err != nil {
		return "", m.wrap(backend.OpPutBlob, "", name, err)
	}
	if _, ok := m.blobs[name]; !ok {
		i, _ := slices.BinarySearch(m.names, name)
		m.names = slices.Insert(m.names, i, name)
	}
	m.blobs[name] = data
	return etag, nil
}

func (m *Mem) checkBlobLocked(name string, pre backend.Precondition) error {
	data, ok := m.blobs[name]
	etag := ""
	if ok {
		etag = backend.BlobETag(data)
	}
	return pre.Check(etag, ok)
}

// GetBlob implements backend.Blobs.
func (m *Mem) GetBlob(ctx context.Context, name string) ([]byte, string, error) {
	if err := m.begin(ctx, backend.OpGetBlob, "", name); err != nil {
		return nil, "", m.wrap(backend.OpGetBlob, "", name, err)
	}
	m.mu.Lock()
	data, ok := m.blobs[name]
	m.mu.Unlock()
	if !ok {
		return nil, "", fault.New(fault.NotFound, backend.Ctx(backend.OpGetBlob, m.name, "", name), "no blob")
	}
	return slices.Clone(data), backend.BlobETag(data), nil
}

// ListBlobs implements backend.Blobs.
func (m *Mem) ListBlobs(ctx context.Context, prefix, startAfter string, limit int) (backend.Page, error) {
	if err := m.begin(ctx, backend.OpListBlobs, "", prefix); err != nil {
		return backend.Page{}, m.wrap(backend.OpListBlobs, "", "", err)
	}
	if limit <= 0 {
		limit = backend.DefaultLimit
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	from := max(prefix, startAfter)
	i, found := slices.BinarySearch(m.names, from)
	if found && from == startAfter {
		i++
	}
	var p backend.Page
	for ; i < len(m.names) && strings.HasPrefix(m.names[i], prefix); i++ {
		if len(p.Entries) == limit {
			p.More = true
			break
		}
		data := m.blobs[m.names[i]]
		p.Entries = append(p.Entries, backend.Entry{Key: m.names[i], ETag: backend.BlobETag(data), Size: int64(len(data))})
	}
	return p, nil
}

// DeleteBlob implements backend.Blobs.
func (m *Mem) DeleteBlob(ctx context.Context, name string, pre backend.Precondition) error {
	if err := m.begin(ctx, backend.OpDeleteBlob, "", name); err != nil {
		return m.wrap(backend.OpDeleteBlob, "", name, err)
	}
	if pre.IfNoneMatch {
		return fault.New(fault.Invalid, backend.Ctx(backend.OpDeleteBlob, m.name, "", name), "if-none-match on a delete")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkBlobLocked(name, pre); err != nil {
		return m.wrap(backend.OpDeleteBlob, "", name, err)
	}
	if _, ok := m.blobs[name]; !ok {
		return nil
	}
	delete(m.blobs, name)
	i, _ := slices.BinarySearch(m.names, name)
	m.names = slices.Delete(m.names, i, i+1)
	return nil
}
