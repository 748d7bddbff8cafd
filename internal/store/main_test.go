package store

import (
	"context"
	"errors"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Child processes: the test binary re-executes itself with one of these
// variables set to play a second process (lock test) or a crashing writer
// (crash test). TestMain runs the child role instead of the tests.
const (
	envLockChild  = "CAIRN_STORE_TEST_LOCK_CHILD"
	envCrashChild = "CAIRN_STORE_TEST_CRASH_CHILD"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envLockChild); dir != "" {
		os.Exit(lockChild(dir))
	}
	if dir := os.Getenv(envCrashChild); dir != "" {
		crashChild(dir) // never returns: killed by the parent
	}
	goleak.VerifyTestMain(m)
}

var bg = context.Background()

// openT opens a store in dir (a new temporary directory if empty) and
// closes it when the test ends, unless the test closed it already.
func openT(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func mustPut(t testing.TB, s *Store, tenant, key, body string) Record {
	t.Helper()
	rec, err := s.Put(bg, tenant, key, []byte(body), doc.Precondition{})
	if err != nil {
		t.Fatalf("Put(%s/%s): %v", tenant, key, err)
	}
	return rec
}

func wantClass(t testing.TB, what string, err error, want fault.Class) {
	t.Helper()
	if got := fault.ClassOf(err); got != want {
		t.Fatalf("%s: class %v (err %v), want %v", what, got, err, want)
	}
}
