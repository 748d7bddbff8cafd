//go:build unix

package cli

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// keepOwner gives f the owner and group of old, where the process may (as
// root, or a group it is in); otherwise f keeps the process's.
func keepOwner(f *os.File, old fs.FileInfo) {
	if st, ok := old.Sys().(*syscall.Stat_t); ok {
		_ = f.Chown(int(st.Uid), int(st.Gid))
	}
}

// trustLink refuses name if it is a symbolic link made by a user other
// than this process's (or root): the rule the kernel applies in sticky
// shared directories with fs.protected_symlinks, here wherever the link
// is, so an export run as root cannot be led to replace a file it did
// not name.
func trustLink(name string) error {
	li, err := os.Lstat(name)
	if err != nil || li.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	st, ok := li.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 || int(st.Uid) == os.Geteuid() {
		return nil
	}
	return fmt.Errorf("%s: a symbolic link made by another user (uid %d): not followed; name the file itself", name, st.Uid)
}
