package chaos

import (
	"context"
	"fmt"
	"slices"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
)

var _ backend.Blobs = (*Backend)(nil)

// blobs is the wrapped backend's Blobs; every backend cairn ships has them.
func (b *Backend) blobs(op, name string) (backend.Blobs, error) {
	if bl, ok := backend.BlobsOf(b.inner); ok {
		return bl, nil
	}
	return nil, fault.New(fault.Config, backend.Ctx(op, b.name, "", name), "the wrapped backend keeps no blobs")
}

// PutBlob implements backend.Blobs with the profile's faults.
func (b *Backend) PutBlob(ctx context.Context, name string, data []byte, pre backend.Precondition) (string, error) {
	bl, err := b.blobs(backend.OpPutBlob, name)
	if err != nil {
		return "", err
	}
	c, err := b.begin(ctx, backend.OpPutBlob, "", name)
	if err != nil {
		return "", err
	}
	etag, err := bl.PutBlob(ctx, name, data, pre)
	if err = b.end(ctx, c, err); err != nil {
		return "", err
	}
	return etag, nil
}

// GetBlob implements backend.Blobs. A corrupted read returns the blob's
// bytes damaged, without an error: a blob's own format carries the
// checksum that must catch it.
func (b *Backend) GetBlob(ctx context.Context, name string) ([]byte, string, error) {
	bl, err := b.blobs(backend.OpGetBlob, name)
	if err != nil {
		return nil, "", err
	}
	c, err := b.begin(ctx, backend.OpGetBlob, "", name)
	if err != nil {
		return nil, "", err
	}
	data, etag, err := bl.GetBlob(ctx, name)
	if err == nil && c != nil && len(data) > 0 {
		data = b.damageBlob(ctx, c, data)
	}
	if err = b.end(ctx, c, err); err != nil {
		return nil, "", err
	}
	return data, etag, nil
}

// damageBlob flips a bit of data or truncates it if the call draws
// corrupt_flip or corrupt_truncate.
func (b *Backend) damageBlob(ctx context.Context, c *call, data []byte) []byte {
	flip, cut := c.roll("corrupt_flip") < c.st.p.CorruptFlip, c.roll("corrupt_truncate") < c.st.p.CorruptTruncate
	if !flip && !cut {
		return data
	}
	pos := draw(c.st.seed, c.op, c.tenant, c.key, c.n, "corrupt.pos")
	i := int(pos % uint64(len(data)))
	if flip {
		data = slices.Clone(data)
		data[i] ^= 1 << (pos >> 32 % 8)
		b.inject(ctx, c, "corrupt_flip", fmt.Sprintf("byte %d of %d", i, len(data)))
		return data
	}
	b.inject(ctx, c, "corrupt_truncate", fmt.Sprintf("%d of %d bytes", i, len(data)))
	return data[:i]
}

// ListBlobs implements backend.Blobs with the profile's faults.
func (b *Backend) ListBlobs(ctx context.Context, prefix, startAfter string, limit int) (backend.Page, error) {
	bl, err := b.blobs(backend.OpListBlobs, "")
	if err != nil {
		return backend.Page{}, err
	}
	c, err := b.begin(ctx, backend.OpListBlobs, "", prefix+"\x00"+startAfter)
	if err != nil {
		return backend.Page{}, err
	}
	p, err := bl.ListBlobs(ctx, prefix, startAfter, limit)
	if err = b.end(ctx, c, err); err != nil {
		return backend.Page{}, err
	}
	return p, nil
}

// DeleteBlob implements backend.Blobs with the profile's faults.
func (b *Backend) DeleteBlob(ctx context.Context, name string, pre backend.Precondition) error {
	bl, err := b.blobs(backend.OpDeleteBlob, name)
	if err != nil {
		return err
	}
	c, err := b.begin(ctx, backend.OpDeleteBlob, "", name)
	if err != nil {
		return err
	}
	return b.end(ctx, c, bl.DeleteBlob(ctx, name, pre))
}
