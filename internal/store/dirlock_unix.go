//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cairnstore/cairn/internal/fault"
)

// dirLock is an exclusive flock(2) on dir/LOCK, held for the life of a Store.
// flock locks belong to the open file description, so a second Open in the
// same process conflicts exactly like a second process does, and the kernel
// drops the lock when the process dies (kill -9 included): no stale lock
// files to clean up.
type dirLock struct{ f *os.File }

// lockDir takes the lock. A reader (readOnly) creates no lock file: with
// none there, no node ever ran on dir, and it reads without one; flock
// takes an exclusive lock on a file opened for reading too.
func lockDir(dir string, readOnly bool) (*dirLock, error) {
	name := filepath.Join(dir, "LOCK")
	flag := os.O_RDWR | os.O_CREATE
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(name, flag, 0o600)
	if readOnly && errors.Is(err, os.ErrNotExist) {
		return &dirLock{}, nil
	}
	if err != nil {
		return nil, fault.E(fault.Config, fault.Context{Op: "store.open"},
			fmt.Errorf("data directory %s: open lock file: %w", dir, err))
	}
	err = flockRetryEINTR(f)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, fault.E(fault.Config, fault.Context{Op: "store.open"},
			fmt.Errorf("data directory %s is %w", dir, ErrLocked))
	}
	if err != nil {
		f.Close()
		return nil, fault.E(fault.Config, fault.Context{Op: "store.open"},
			fmt.Errorf("data directory %s: lock: %w", dir, err))
	}
	return &dirLock{f: f}, nil
}

func flockRetryEINTR(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}

// release unlocks by closing the descriptor; the file stays (removing it
// would race with a process that just opened it).
func (l *dirLock) release() error {
	if l.f == nil {
		return nil // a reader's, of a directory without a lock file
	}
	return l.f.Close()
}
