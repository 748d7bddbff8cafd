package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// walFault injects err into every operation of kind on a write-ahead log
// file, once switched on.
func walFault(err error, kinds ...errorfs.OpKind) *errorfs.Toggle {
	return &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		for _, k := range kinds {
			if op.Kind == k && strings.HasSuffix(op.Path, ".log") {
				return err
			}
		}
		return nil
	})}
}

// TestLogFailure makes the log's fsync (or write) fail under concurrent
// writers and checks: every writer of the failed group gets an error of the
// right class; the store then refuses reads and writes (it must not show
// the failed, unacknowledged batch); Close works; after reopening, every
// acknowledged write is there and documents and change log agree.
func TestLogFailure(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		kinds []errorfs.OpKind
		class fault.Class
	}{
		{"fsync EIO", syscall.EIO, []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}, fault.Unknown},
		{"write ENOSPC", syscall.ENOSPC, []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}, fault.Exhausted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			tog := walFault(c.err, c.kinds...)
			var failures []error // OnFail runs on the syncer; read after its writers were answered
			s, err := Open(dir, Options{FS: errorfs.Wrap(vfs.Default, tog), OnFail: func(err error) { failures = append(failures, err) }})
			if err != nil {
				t.Fatal(err)
			}
			before := mustPut(t, s, "t", "before", "{}")
			tog.On()
			const writers = 16
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					_, errs[i] = s.Put(bg, "t", fmt.Sprintf("k%d", i), []byte("{}"), doc.Precondition{})
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err == nil {
					t.Fatalf("writer %d was acknowledged although the log failed", i)
				}
				wantClass(t, fmt.Sprintf("writer %d", i), err, c.class)
			}
			if len(failures) != 1 || !errors.Is(failures[0], c.err) {
				t.Fatalf("OnFail calls %v, want one with %v", failures, c.err)
			}
			// Failed: no reads (Pebble would show the failed batch), no writes.
			if _, err := s.Get(bg, "t", "k0"); !errors.Is(err, ErrFailed) {
				t.Fatalf("Get after the failure = %v, want ErrFailed", err)
			}
			if _, err := s.Put(bg, "t", "after", nil, doc.Precondition{}); !errors.Is(err, ErrFailed) {
				t.Fatalf("Put after the failure = %v, want ErrFailed", err)
			}
			wantClass(t, "Put after the failure", firstErr(s.List(bg, "t", ListOptions{})), c.class)
			if err := s.PutCheckpoint("b", "t", nil); !errors.Is(err, ErrFailed) {
				t.Fatalf("PutCheckpoint after the failure = %v, want ErrFailed", err)
			}
			if err := s.Close(); err != nil {
				t.Logf("Close after the failure: %v", err)
			}
			tog.Off()

			s = openT(t, dir, Options{})
			if got, err := s.Get(bg, "t", "before"); err != nil || got.ETag != before.ETag {
				t.Fatalf("acknowledged write lost after recovery: %+v, %v", got, err)
			}
			if _, err := s.Get(bg, "t", "after"); !errors.Is(err, fault.ErrNotFound) {
				t.Fatalf("a write refused after the failure exists: %v", err)
			}
			// The failed group's writes have an unknown outcome: each may or
			// may not have reached the disk. Whatever is there is whole.
			checkConsistent(t, s)
			mustPut(t, s, "t", "recovered", "{}")
		})
	}
}

// TestFlushOutOfSpaceFailsStore: a flush that fails for want of space
// (retried by Pebble in the background while writes go on to the log)
// fails the store as a log write would: OnFail with the disk-full error,
// writes refused, and Pebble's repeated error written once to the logger.
func TestFlushOutOfSpaceFailsStore(t *testing.T) {
	dir := t.TempDir()
	tog := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt) && strings.HasSuffix(op.Path, ".sst") {
			return syscall.ENOSPC
		}
		return nil
	})}
	failed := make(chan error, 1)
	var logged bytes.Buffer
	var logMu sync.Mutex
	s, err := Open(dir, Options{FS: errorfs.Wrap(vfs.Default, tog),
		OnFail: func(err error) { failed <- err },
		Logger: slog.New(slog.NewJSONHandler(lockedWriter{&logMu, &logged}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "t", "k", "{}")
	tog.On()
	if _, err := s.db.AsyncFlush(); err != nil {
		t.Fatal(err)
	}
	if err := <-failed; !errors.Is(err, syscall.ENOSPC) || fault.ClassOf(err) != fault.Exhausted {
		t.Fatalf("OnFail(%v), want the disk-full error, class exhausted", err)
	}
	if _, err := s.Put(bg, "t", "after", []byte("{}"), doc.Precondition{}); !errors.Is(err, ErrFailed) {
		t.Fatalf("Put after the failed flush = %v, want ErrFailed", err)
	}
	tog.Off()
	if err := s.Close(); err != nil {
		t.Logf("Close after the failure: %v", err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if n := strings.Count(logged.String(), "store: pebble error"); n > 1 {
		t.Fatalf("Pebble's error written %d times within a minute, want once:\n%s", n, logged.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
