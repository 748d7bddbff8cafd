package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/cairnstore/cairn/internal/fault"
)

// Blobs is an optional capability: named objects outside every tenant's
// documents, where replication keeps what it stores beside them (change
// feed batches, catch-up packs, digests). A blob's bytes are opaque to the
// backend: each format stored in one carries its own magic, version and
// checksum, and its reader reports damage as fault.Corruption. Names are
// checked by [ValidateBlobName]; listing is in ascending byte order of the
// name, as for keys. Errors are fault errors with Op one of the OpBlob*
// names, Key the blob's name (empty for a listing) and Tenant empty.
type Blobs interface {
	// PutBlob stores data under name, replacing what is there, if pre
	// holds; it returns the new blob's ETag. fault.PreconditionFailed
	// when pre does not hold (nothing was written).
	PutBlob(ctx context.Context, name string, data []byte, pre Precondition) (etag string, err error)

	// GetBlob returns the blob's bytes and ETag; fault.NotFound when
	// there is none.
	GetBlob(ctx context.Context, name string) (data []byte, etag string, err error)

	// ListBlobs returns up to limit (≤ 0: DefaultLimit) blobs whose names
	// start with prefix and are greater than startAfter, in ascending
	// byte order; Entry.Key is the name. Page.More as for List.
	ListBlobs(ctx context.Context, prefix, startAfter string, limit int) (Page, error)

	// DeleteBlob removes the blob if pre holds (deleting a missing blob
	// without a precondition is not an error); as Backend.Delete.
	DeleteBlob(ctx context.Context, name string, pre Precondition) error
}

// Blob operation names, as they appear in fault.Context.Op.
const (
	OpPutBlob    = "backend.put_blob"
	OpGetBlob    = "backend.get_blob"
	OpListBlobs  = "backend.list_blobs"
	OpDeleteBlob = "backend.delete_blob"
)

// BlobDir is the directory (fs) or name prefix (s3, after the backend's
// own prefix) that holds blobs. No tenant can be called that: tenant names
// start with a letter or digit.
const BlobDir = "_cairn"

// MaxBlobName is the longest blob name, and MaxBlobSegment the longest
// segment of one, in bytes: the segments are file names on fs and on S3
// servers that store objects as files.
const (
	MaxBlobName    = 512
	MaxBlobSegment = 255
)

// BlobsOf returns b's Blobs, looking through wrappers that have an
// Unwrap() Backend method when b itself has none. A wrapper that
// implements Blobs (the chaos simulator) is returned itself, so its
// faults apply. ok is false when no backend in the chain has blobs.
func BlobsOf(b Backend) (Blobs, bool) {
	for b != nil {
		if bl, is := b.(Blobs); is {
			return bl, true
		}
		u, is := b.(interface{ Unwrap() Backend })
		if !is {
			break
		}
		b = u.Unwrap()
	}
	return nil, false
}

// ValidateBlobName checks a blob name: 1 to MaxBlobName bytes of
// '/'-separated segments, each 1 to MaxBlobSegment of the bytes A-Z a-z
// 0-9 . _ = - and neither "." nor "..". The error is fault.Invalid.
//
// One rule cannot be checked from the name alone: a blob's name must not
// be a directory of another's ("a/b" and "a/b/c" cannot both exist), as
// on a file system; such a write fails.
func ValidateBlobName(name string) error {
	bad := func(why string) error {
		return fault.New(fault.Invalid, fault.Context{}, fmt.Sprintf("blob name %q: %s", name, why))
	}
	if name == "" || len(name) > MaxBlobName {
		return bad(fmt.Sprintf("must be 1 to %d bytes", MaxBlobName))
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("empty, \".\" or \"..\" segment")
		}
		if len(seg) > MaxBlobSegment {
			return bad(fmt.Sprintf("a segment of %d bytes (at most %d)", len(seg), MaxBlobSegment))
		}
		for i := 0; i < len(seg); i++ {
			if !blobByte(seg[i]) {
				return bad(fmt.Sprintf("byte %q not allowed (A-Z a-z 0-9 . _ = - and '/' between segments)", seg[i]))
			}
		}
	}
	return nil
}

// ValidateBlobPrefix checks a listing prefix: empty, or what a name may
// start with (segments as in a name; it may end with '/').
func ValidateBlobPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := ValidateBlobName(strings.TrimSuffix(prefix, "/")); err != nil {
		return fault.New(fault.Invalid, fault.Context{}, "blob prefix: "+err.Error())
	}
	return nil
}

func blobByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '=' || c == '-'
}

// BlobETag is the ETag mem and fs give a blob: a hash of its bytes.
func BlobETag(data []byte) string {
	sum := sha256.Sum256(data)
	return "b" + hex.EncodeToString(sum[:16])
}
