//go:build !unix

package fs

import "errors"

// lockFile is unsupported: without flock, preconditions could not hold
// across processes, and the backend refuses to write rather than pretend.
func lockFile(string) (func(), error) {
	return nil, errors.New("fs backend: no cross-process file locking on this platform")
}
