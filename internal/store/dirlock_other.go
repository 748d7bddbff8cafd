//go:build !unix

package store

import (
	"github.com/cairnstore/cairn/internal/fault"
)

type dirLock struct{}

// lockDir refuses to run where flock(2) is not available: an unlocked data
// directory could be opened twice and lose writes.
func lockDir(dir string, _ bool) (*dirLock, error) {
	return nil, fault.New(fault.Config, fault.Context{Op: "store.open"},
		"data directory "+dir+": locking is only implemented on unix")
}

func (l *dirLock) release() error { return nil }
