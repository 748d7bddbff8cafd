//go:build unix

package fs

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive flock(2) on path, creating it if needed, and
// returns the function that releases it. flock locks belong to the open
// file description, so two opens in one process exclude each other too.
func lockFile(path string) (unlock func(), err error) {
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(fh.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		fh.Close()
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	// Closing the descriptor releases the lock.
	return func() { fh.Close() }, nil
}
