//go:build unix

package cli

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// keepOwner gives f the owner and group of old, where the process may (as
// root, or a group it is in); otherwise f keeps the process's.
func keepOwner(f *os.File, old fs.FileInfo) {
	if st, ok := old.Sys().(*syscall.Stat_t); ok {
		_ = f.Chown(int(st.Uid), int(st.Gid))
	}
}

// trustLinks refuses name if the path to it passes through a symbolic
// link made by a user other than this process's (or root), at any step:
// the last element, a directory on the way, or a link a link points to.
// It is the rule the kernel applies in sticky shared directories with
// fs.protected_symlinks, here wherever the link is, so an export run as
// root cannot be led to replace a file it did not name.
func trustLinks(name string) error {
	abs, err := filepath.Abs(name)
	if err != nil {
		return err
	}
	return walkLinks(abs, 0)
}

// walkLinks checks each element of the absolute path p, following links
// (at most 40 of them, as the kernel does).
func walkLinks(p string, hops int) error {
	resolved := string(filepath.Separator)
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(p), string(filepath.Separator)), string(filepath.Separator))
	for i, part := range parts {
		if part == "" {
			continue
		}
		next := filepath.Join(resolved, part)
		li, err := os.Lstat(next)
		if err != nil {
			return nil // missing: nothing to follow; the write reports it
		}
		if li.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if st, ok := li.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
			return fmt.Errorf("%s: the path passes through %s, a symbolic link made by another user (uid %d): not followed; name the file itself", p, next, st.Uid)
		}
		if hops++; hops > 40 {
			return fmt.Errorf("%s: too many symbolic links", p)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(resolved, target)
		}
		rest := filepath.Join(append([]string{target}, parts[i+1:]...)...)
		return walkLinks(rest, hops)
	}
	return nil
}
