package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cairnstore/cairn/internal/store"
)

// writeOutput writes a command's output file name through write, the way a
// user expects of a Unix tool given a path:
//   - a regular file, or a new one, is written whole or not at all: to a
//     temporary file beside it, fsynced and renamed over it, so a failed or
//     killed command leaves the old file; a file that existed keeps its
//     permission bits and, where the process may set them, its owner;
//   - a symbolic link is followed: its target is replaced, the link kept;
//     but not through a link another user made, anywhere in the path
//     (trustLinks): as root, a link planted in a shared directory would
//     make the command overwrite any file;
//   - anything else that exists and is not a directory (a device such as
//     /dev/null or /dev/stdout, a FIFO) is opened and written in place:
//     renaming a file over it would destroy it;
//   - a directory, or a link to a missing file, is refused.
//
// perm is the permission of a new file.
func writeOutput(name string, perm fs.FileMode, write func(io.Writer) error) error {
	if err := trustLinks(name); err != nil {
		return err
	}
	if di, err := os.Stat(filepath.Dir(name)); err != nil || !di.IsDir() {
		return fmt.Errorf("%s: no directory %s to write it in", name, filepath.Dir(name))
	}
	fi, err := os.Stat(name) // follows links
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if li, lerr := os.Lstat(name); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s: a symbolic link to a missing file", name)
		}
		return replaceFile(name, perm, nil, write)
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s: a directory, not a file", name)
	case !fi.Mode().IsRegular():
		f, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = write(f)
		return errors.Join(err, f.Close())
	}
	target, err := filepath.EvalSymlinks(name)
	if err != nil {
		return err
	}
	return replaceFile(target, fi.Mode().Perm(), fi, write)
}

// replaceFile writes name through store.ReplaceFile (a temporary file
// beside it, fsynced, renamed over it, the directory fsynced), with perm,
// and old's owner if old is set and the process may give it.
func replaceFile(name string, perm fs.FileMode, old fs.FileInfo, write func(io.Writer) error) error {
	return store.ReplaceFile(name, perm, func(f *os.File) error {
		if old != nil {
			keepOwner(f, old)
		}
		return write(f)
	})
}
