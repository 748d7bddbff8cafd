// Package proctest helps tests that run real server processes (the cairn
// binary, Jaeger, versitygw): a buffer for their output that a failing test
// may read while the process still writes, and free loopback ports.
//
// Sharp edge: a port from FreePorts is free when returned, not reserved; a
// process started on it can still lose a race with another. Tests start the
// process right away and fail with its output if it could not listen.
package proctest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// SyncBuffer collects a process's output, or a logger's. exec's copier
// goroutines (or the logging goroutines) write while the test may read, so
// both sides lock.
type SyncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Reset empties the buffer.
func (s *SyncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago: all n listeners are open at once, so the ports differ.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	ls := make([]net.Listener, n)
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("proctest: free port: %v", err)
		}
		ls[i] = l
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// MainWithCairn is the TestMain of a package that tests the real cairn
// binary. It sets *bin to $CAIRN_BIN (scripts/test.sh builds it with -race)
// or, when that is unset, builds cmd/cairn into a temporary directory it
// removes afterwards; then it runs the tests and exits with their status.
// name prefixes the build's error message.
func MainWithCairn(m *testing.M, bin *string, name string) {
	os.Exit(mainWithCairn(m, bin, name))
}

func mainWithCairn(m *testing.M, bin *string, name string) int {
	if *bin = os.Getenv("CAIRN_BIN"); *bin != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "cairn-"+name+"-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin = filepath.Join(dir, "cairn")
	build := exec.Command("go", "build", "-o", *bin, "github.com/cairnstore/cairn/cmd/cairn")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: building cairn: %v\n", name, err)
		return 1
	}
	return m.Run()
}
