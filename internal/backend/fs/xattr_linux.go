package fs

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// etagAttr is the extended attribute in which a write records its object's
// ETag and size, so that List and Stat learn them with a stat and a
// getxattr instead of opening the file and reading its header. It is set
// on the temporary file before the rename (so it is never missing on a
// file this backend wrote), and it moves with the inode through a split's
// links.
//
// The attribute also records the inode number and modification time of
// the file it was set on, and a reader believes it only for that file
// unchanged: bytes written over the file in place (cp onto it, a restore
// tool rolling it back) keep the attribute but change the modification
// time, and a file given another file's attribute (a copy made with its
// attributes) has another inode. Believing such an attribute would give
// Stat and List another ETag than Get, and a repair conditional on what
// Get saw would fail forever. The reader then reads the header and
// records the attribute afresh (refreshETagAttr). Two writes within one
// tick of the kernel's coarse clock can leave the same time; an in-place
// change that also keeps the size within that tick goes unseen.
const etagAttr = "user.cairn.etag"

// setETagAttr records etag and size on the file at path, a temporary file
// only its writer has; best effort: on a file system without user
// extended attributes the readers fall back to the header.
func setETagAttr(path, etag string, size int64) {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return
	}
	_ = unix.Setxattr(path, etagAttr, attrValue(etag, size, &st), 0)
}

// stamp is what a file's attribute is checked against: its inode, size
// and modification time.
type stamp struct {
	ino   uint64
	size  int64
	mtime int64
}

// stampOf returns fh's stamp; ok is false if fstat failed.
func stampOf(fh *os.File) (s stamp, ok bool) {
	raw, err := fh.SyscallConn()
	if err != nil {
		return stamp{}, false
	}
	_ = raw.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) == nil {
			s, ok = stamp{st.Ino, st.Size, st.Mtim.Nano()}, true
		}
	})
	return s, ok
}

// refreshETagAttr records etag and size on fh, whose header they were read
// from after before was taken, unless the file changed since before (a
// write in place during the read); best effort, as a cache is filled. It
// writes through the descriptor, so a file that replaced the path
// meanwhile keeps its own attribute.
func refreshETagAttr(fh *os.File, etag string, size int64, before stamp) {
	raw, err := fh.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) != nil || st.Size != size || (stamp{st.Ino, st.Size, st.Mtim.Nano()}) != before {
			return
		}
		_ = unix.Fsetxattr(int(fd), etagAttr, attrValue(etag, size, &st), 0)
	})
}

func attrValue(etag string, size int64, st *unix.Stat_t) []byte {
	return []byte(etag + " " + strconv.FormatInt(size, 10) + " " +
		strconv.FormatUint(st.Ino, 10) + " " + strconv.FormatInt(st.Mtim.Nano(), 10))
}

// etagAttrOf returns the ETag and size recorded on the file at path. ok is
// false when there is no record to believe (none: a damaged file that
// Corrupt wrote, no support, one written by an older build; or one for
// another file or an earlier state of this one); the error is the file's
// absence or another failure of stat.
func etagAttrOf(path string) (etag string, size int64, ok bool, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return "", 0, false, notFound(err)
		}
		return "", 0, false, nil // let the open say what is wrong
	}
	var buf [128]byte
	n, err := unix.Getxattr(path, etagAttr, buf[:])
	switch {
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
		return "", 0, false, notFound(err) // replaced and deleted since the stat
	case err != nil:
		return "", 0, false, nil // ENODATA, ENOTSUP, ERANGE: read the header
	}
	f := strings.Fields(string(buf[:n]))
	if len(f) != 4 {
		return "", 0, false, nil
	}
	size, serr := strconv.ParseInt(f[1], 10, 64)
	ino, ierr := strconv.ParseUint(f[2], 10, 64)
	mtime, merr := strconv.ParseInt(f[3], 10, 64)
	if serr != nil || ierr != nil || merr != nil || f[0] == "" ||
		size != st.Size || ino != st.Ino || mtime != st.Mtim.Nano() {
		return "", 0, false, nil
	}
	return f[0], size, true, nil
}
