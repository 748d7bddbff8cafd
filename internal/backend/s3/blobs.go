package s3

import (
	"context"
	"fmt"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
)

var _ backend.Blobs = (*S3)(nil)

// Blobs are the objects "<prefix>_cairn/<name>": no tenant's objects are
// under that name, and Tenants skips it.

func (s *S3) blob(name string) string { return s.prefix + backend.BlobDir + "/" + name }

// PutBlob implements backend.Blobs.
func (s *S3) PutBlob(ctx context.Context, name string, data []byte, pre backend.Precondition) (string, error) {
	ctx = withHint(ctx)
	err := backend.ValidateBlobName(name)
	if err == nil {
		if perr := pre.Check("", false); fault.ClassOf(perr) == fault.Invalid { // both conditions set
			err = perr
		}
	}
	if err != nil {
		return "", s.fail(ctx, backend.OpPutBlob, "", name, err)
	}
	etag, err := s.write(ctx, s.blob(name), data, pre)
	if err != nil {
		err = s.fail(ctx, backend.OpPutBlob, "", name, err)
		if pre.IfMatch != "" && fault.ClassOf(err) == fault.NotFound {
			// S3 answers If-Match on a missing object with 404 NoSuchKey.
			err = fault.E(fault.PreconditionFailed, backend.Ctx(backend.OpPutBlob, s.name, "", name),
				fmt.Errorf("if-match %s: no blob: %w", pre.IfMatch, err))
		}
		return "", err
	}
	return etag, nil
}

// GetBlob implements backend.Blobs.
func (s *S3) GetBlob(ctx context.Context, name string) ([]byte, string, error) {
	ctx = withHint(ctx)
	if err := backend.ValidateBlobName(name); err != nil {
		return nil, "", s.fail(ctx, backend.OpGetBlob, "", name, err)
	}
	data, etag, err := s.read(ctx, s.blob(name))
	if err != nil {
		return nil, "", s.fail(ctx, backend.OpGetBlob, "", name, err)
	}
	return data, etag, nil
}

// ListBlobs implements backend.Blobs with one ListObjectsV2 page (no
// delimiter): names are ASCII, so S3's order is byte order.
func (s *S3) ListBlobs(ctx context.Context, prefix, startAfter string, limit int) (backend.Page, error) {
	ctx = withHint(ctx)
	if err := backend.ValidateBlobPrefix(prefix); err != nil {
		return backend.Page{}, s.fail(ctx, backend.OpListBlobs, "", "", err)
	}
	if limit <= 0 {
		limit = backend.DefaultLimit
	}
	base := s.blob("")
	lo := minio.ListObjectsOptions{Prefix: base + prefix, Recursive: true, MaxKeys: min(limit+1, backend.DefaultLimit)}
	if startAfter != "" {
		lo.StartAfter = base + startAfter
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var p backend.Page
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, lo) {
		if obj.Err != nil {
			return backend.Page{}, s.fail(ctx, backend.OpListBlobs, "", "", obj.Err)
		}
		name, ok := strings.CutPrefix(obj.Key, base)
		if !ok || name <= startAfter {
			continue
		}
		if len(p.Entries) == limit {
			p.More = true
			break
		}
		p.Entries = append(p.Entries, backend.Entry{Key: name, ETag: trimETag(obj.ETag), Size: obj.Size})
	}
	return p, nil
}

// DeleteBlob implements backend.Blobs.
func (s *S3) DeleteBlob(ctx context.Context, name string, pre backend.Precondition) error {
	ctx = withHint(ctx)
	err := backend.ValidateBlobName(name)
	if err == nil && pre.IfNoneMatch {
		err = fault.New(fault.Invalid, fault.Context{}, "if-none-match on a delete")
	}
	if err == nil {
		err = s.remove(ctx, s.blob(name), pre)
	}
	if err != nil {
		return s.fail(ctx, backend.OpDeleteBlob, "", name, err)
	}
	return nil
}
