package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// recordingWatcher remembers every Committed call.
type recordingWatcher struct {
	mu   sync.Mutex // guards seen
	seen map[uint64]Record
	last uint64
	bad  error
}

func (w *recordingWatcher) Committed(rec *Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if rec.Seq <= w.last && w.bad == nil {
		w.bad = fmt.Errorf("Committed out of order: seq %d after %d", rec.Seq, w.last)
	}
	w.last = rec.Seq
	w.seen[rec.Seq] = *rec
}

func (w *recordingWatcher) has(seq uint64) (Record, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.seen[seq]
	return r, ok
}

// TestWatcherSeesEveryWriteBeforeItsAnswer checks the Watcher contract: each
// successful write is reported, in seq order, before its writer returns;
// refused writes are not reported.
func TestWatcherSeesEveryWriteBeforeItsAnswer(t *testing.T) {
	w := &recordingWatcher{seen: map[uint64]Record{}}
	s := openT(t, t.TempDir(), Options{Watcher: w})
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				key := fmt.Sprintf("k%d", i%4)
				rec, err := s.Put(ctx, "t", key, []byte(fmt.Sprintf(`{"g":%d}`, g)), doc.Precondition{})
				if err != nil {
					t.Error(err)
					return
				}
				got, ok := w.has(rec.Seq)
				if !ok || got.ETag != rec.ETag || got.Key != key {
					t.Errorf("Put %s seq %d returned before the watcher saw it (saw %v %+v)", key, rec.Seq, ok, got)
				}
			}
		}()
	}
	wg.Wait()
	before := len(w.seen)
	_, err := s.Put(ctx, "t", "k0", []byte(`{}`), doc.Precondition{IfNoneMatch: []string{"*"}})
	if !errors.Is(err, fault.ErrPreconditionFailed) {
		t.Fatalf("create-only over a live key: %v", err)
	}
	if len(w.seen) != before || w.bad != nil {
		t.Fatalf("watcher: %d writes after a refused one (want %d); %v", len(w.seen), before, w.bad)
	}
	if before != 16*20 {
		t.Fatalf("watcher saw %d writes, want %d", before, 16*20)
	}
}

// TestCreated: a write is Created when no live version preceded it — a
// first write, or one after a delete — and not when it replaced one.
func TestCreated(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	ctx := context.Background()
	step := func(what string, want bool) {
		t.Helper()
		rec, err := s.Put(ctx, "t", "k", []byte(`{}`), doc.Precondition{})
		if err != nil || rec.Created != want {
			t.Fatalf("%s: Created %v, %v; want %v", what, rec.Created, err, want)
		}
	}
	step("first write", true)
	step("replacement", false)
	if _, err := s.Delete(ctx, "t", "k", doc.Precondition{}); err != nil {
		t.Fatal(err)
	}
	step("write after delete", true)
}
