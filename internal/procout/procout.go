// Package procout collects the output of a process that a program starts
// (the chaos harness's nodes, a test's gateway), or a logger's, for reading
// while the process still writes.
//
// It is not test support: the chaos harness (cairn-lab) links it, and the
// harness must not link the testing package.
//
// # Concurrency
//
// A Buffer is safe for concurrent use: exec's copier goroutines (or the
// logging goroutines) write while a reader calls String.
package procout

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer whose methods lock. The zero value is empty and
// ready to use.
type Buffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Reset empties the buffer.
func (s *Buffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}
