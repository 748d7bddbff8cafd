package fs

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
)

// etagAttr is the extended attribute in which a write records its object's
// ETag and size, so that List and Stat learn them with one getxattr instead
// of opening the file and reading its header. It is set on the temporary
// file before the rename (so it is never missing or stale on a file this
// backend wrote), and it moves with the inode through a split's links.
const etagAttr = "user.cairn.etag"

// setETagAttr records etag and size on the file at path; best effort: on a
// file system without user extended attributes the readers fall back to
// the header.
func setETagAttr(path, etag string, size int64) {
	_ = syscall.Setxattr(path, etagAttr, []byte(etag+" "+strconv.FormatInt(size, 10)), 0)
}

// etagAttrOf returns the ETag and size recorded on the file at path. ok is
// false when there is no usable record (no attribute: a damaged file that
// Corrupt wrote, or no support); the error is the file's absence or
// another failure of getxattr.
func etagAttrOf(path string) (etag string, size int64, ok bool, err error) {
	var buf [80]byte
	n, err := syscall.Getxattr(path, etagAttr, buf[:])
	switch {
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR):
		return "", 0, false, notFound(err)
	case err != nil:
		return "", 0, false, nil // ENODATA, ENOTSUP, ERANGE: read the header
	}
	etag, sz, found := strings.Cut(string(buf[:n]), " ")
	size, perr := strconv.ParseInt(sz, 10, 64)
	if !found || perr != nil || etag == "" {
		return "", 0, false, nil
	}
	return etag, size, true, nil
}
