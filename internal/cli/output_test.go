//go:build unix

package cli

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

// TestWriteOutput: an output path is written as a Unix tool writes it.
// A regular file is replaced whole and keeps its permissions; a link's
// target is replaced and the link kept; a FIFO or a device is written in
// place, never renamed over (that would turn /dev/null into a file); a
// directory or a dangling link is refused; a failed write leaves the old
// file and no temporary one.
func TestWriteOutput(t *testing.T) {
	dir := t.TempDir()
	ls := func() []string {
		var names []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}

	t.Run("new", func(t *testing.T) {
		p := filepath.Join(dir, "new.out")
		if err := writeOutput(p, 0o600, writeString("a\n")); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%v %v, want 0600", fi.Mode(), err)
		}
	})
	t.Run("existing keeps its mode", func(t *testing.T) {
		p := filepath.Join(dir, "old.out")
		os.WriteFile(p, []byte("old"), 0o644)
		os.Chmod(p, 0o640)
		if err := writeOutput(p, 0o600, writeString("new")); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if fi, _ := os.Stat(p); string(b) != "new" || fi.Mode().Perm() != 0o640 {
			t.Fatalf("%q mode %v, want %q 0640", b, fi.Mode(), "new")
		}
		failed := errors.New("disk on fire")
		if err := writeOutput(p, 0o600, func(io.Writer) error { return failed }); !errors.Is(err, failed) {
			t.Fatalf("failed write: %v", err)
		}
		if b, _ := os.ReadFile(p); string(b) != "new" {
			t.Fatalf("a failed write changed the file: %q", b)
		}
	})
	t.Run("symlink", func(t *testing.T) {
		target, link := filepath.Join(dir, "target.out"), filepath.Join(dir, "link.out")
		os.WriteFile(target, []byte("old"), 0o644)
		os.Symlink("target.out", link)
		if err := writeOutput(link, 0o600, writeString("via link")); err != nil {
			t.Fatal(err)
		}
		if li, err := os.Lstat(link); err != nil || li.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("the link was replaced: %v %v", li.Mode(), err)
		}
		if b, _ := os.ReadFile(target); string(b) != "via link" {
			t.Fatalf("target holds %q", b)
		}
		dangling := filepath.Join(dir, "dangling.out")
		os.Symlink("missing.out", dangling)
		if err := writeOutput(dangling, 0o600, writeString("x")); err == nil || !strings.Contains(err.Error(), "symbolic link to a missing file") {
			t.Fatalf("dangling link: %v", err)
		}
	})
	t.Run("another user's link", func(t *testing.T) {
		target, link := filepath.Join(dir, "precious"), filepath.Join(dir, "planted.out")
		os.WriteFile(target, []byte("keep"), 0o600)
		os.Symlink(target, link)
		if err := os.Lchown(link, 65534, 65534); err != nil {
			t.Skipf("lchown (needs root): %v", err)
		}
		if err := writeOutput(link, 0o600, writeString("overwritten")); err == nil || !strings.Contains(err.Error(), "made by another user") {
			t.Fatalf("a link another user made: %v", err)
		}
		if b, _ := os.ReadFile(target); string(b) != "keep" {
			t.Fatalf("the link's target was written: %q", b)
		}
		// A link of one's own to another user's link, and another user's
		// link to a directory on the way, are refused too.
		chain := filepath.Join(dir, "chain.out")
		os.Symlink(link, chain)
		if err := writeOutput(chain, 0o600, writeString("overwritten")); err == nil || !strings.Contains(err.Error(), "made by another user") {
			t.Fatalf("a link to another user's link: %v", err)
		}
		os.Mkdir(filepath.Join(dir, "secret"), 0o700)
		os.WriteFile(filepath.Join(dir, "secret", "victim"), []byte("keep"), 0o600)
		dirLink := filepath.Join(dir, "shared")
		os.Symlink(filepath.Join(dir, "secret"), dirLink)
		os.Lchown(dirLink, 65534, 65534)
		if err := writeOutput(filepath.Join(dirLink, "victim"), 0o600, writeString("overwritten")); err == nil || !strings.Contains(err.Error(), "made by another user") {
			t.Fatalf("a path through another user's directory link: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "secret", "victim")); string(b) != "keep" {
			t.Fatalf("the file behind the directory link was written: %q", b)
		}
	})
	t.Run("no directory", func(t *testing.T) {
		if err := writeOutput(filepath.Join(dir, "nodir", "out"), 0o600, writeString("x")); err == nil || !strings.Contains(err.Error(), "no directory") {
			t.Fatalf("a path in a missing directory: %v", err)
		}
	})
	t.Run("fifo", func(t *testing.T) {
		p := filepath.Join(dir, "fifo")
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Skip(err)
		}
		// Opened read-write, the FIFO's open does not wait for a writer,
		// and the read below fails at its deadline if the bytes never
		// come (a FIFO replaced by a file).
		rf, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer rf.Close()
		const msg = "through the pipe"
		if err := writeOutput(p, 0o600, writeString(msg)); err != nil {
			t.Fatal(err)
		}
		rf.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(rf, buf); err != nil || string(buf) != msg {
			t.Fatalf("read %q from the FIFO: %v", buf, err)
		}
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Fatalf("the FIFO was replaced: %v %v", fi.Mode(), err)
		}
	})
	t.Run("device", func(t *testing.T) {
		p := filepath.Join(dir, "null")
		// A null device of the test's own, not /dev/null: a regression
		// would replace only this one.
		if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
			t.Skipf("mknod (needs root): %v", err)
		}
		if err := writeOutput(p, 0o600, writeString("discarded")); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Fatalf("the device was replaced: %v %v", fi.Mode(), err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if err := writeOutput(dir, 0o600, writeString("x")); err == nil || !strings.Contains(err.Error(), "a directory") {
			t.Fatalf("directory: %v", err)
		}
	})
	for _, name := range ls() {
		if strings.HasSuffix(name, ".tmp") {
			t.Errorf("temporary file left: %s", name)
		}
	}
}
