package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/store"
)

const testGrace = time.Hour

// testClock is the collectors' clock: the real time (the stores' HLCs
// follow it) plus a skew the test moves forward past the grace period.
type testClock struct{ skew atomic.Int64 }

func (c *testClock) now() time.Time { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *testClock) pastGrace()     { c.skew.Store(int64(2 * testGrace)) }

// countObserver counts what collectors report.
type countObserver struct{ collected, trimmed atomic.Int64 }

func (o *countObserver) TombstonesCollected(n int) { o.collected.Add(int64(n)) }
func (o *countObserver) ChangesTrimmed(n int)      { o.trimmed.Add(int64(n)) }

func newCollector(t *testing.T, s *store.Store, clk *testClock, obs CollectObserver, es ...*Engine) *Collector {
	t.Helper()
	c, err := NewCollector(CollectorConfig{Store: s, Engines: es, Grace: testGrace, Now: clk.now, Observer: obs, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func collect(t *testing.T, c *Collector) CollectStats {
	t.Helper()
	st, err := c.Collect(bg, tenant)
	if err != nil {
		t.Fatalf("Collect: %v (stats %+v)", err, st)
	}
	return st
}

func changes(t *testing.T, s *store.Store) int {
	t.Helper()
	n := 0
	for _, err := range s.Changes(bg, tenant, 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

func wantAbsent(t *testing.T, what string, s *store.Store, b backend.Backend, key string) {
	t.Helper()
	if s != nil {
		if l, ok := localState(t, s, key); ok {
			t.Fatalf("%s: the node holds %s: %+v", what, key, l)
		}
		if st, ok, _ := s.SyncState(b.Name(), tenant, key); ok {
			t.Fatalf("%s: the node keeps a base for %s: %+v", what, key, st)
		}
	}
	if r, ok := remoteState(t, b, key); ok {
		t.Fatalf("%s: the backend holds %s: %+v", what, key, r)
	}
}

// TestCollectSharedBackend: two nodes share a backend. A delete on a is
// not collected within the grace period, so c, which has not seen it yet,
// gets the tombstone rather than resurrecting the document. Past the grace
// period a collects it on the node and the backend; c's rounds do not
// bring it back (a side without the key stands for the base tombstone),
// and c then collects its own copy.
func TestCollectSharedBackend(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	ea, ec := newEngine(t, a, b, nil), newEngine(t, c, b, nil)
	clk, obs := &testClock{}, &countObserver{}
	ca, cc := newCollector(t, a, clk, obs, ea), newCollector(t, c, clk, obs, ec)
	for i := range 5 {
		put(t, a, fmt.Sprintf("k%d", i), `{"v":1}`)
	}
	converge(t, 3, ea, ec)
	for i := range 3 {
		del(t, a, fmt.Sprintf("k%d", i))
	}
	runRound(t, ea)

	if st := collect(t, ca); st.Examined != 0 || st.Collected != 0 {
		t.Fatalf("collection within the grace period: %+v, want nothing", st)
	}
	if r, _ := remoteState(t, b, "k0"); !r.tomb {
		t.Fatalf("backend holds %+v within the grace period, want the tombstone", r)
	}
	// c had not seen the delete: it learns it, it does not resurrect k0.
	if st := runRound(t, ec); st.Actions[Download] != 3 || st.Actions[Upload] != 0 {
		t.Fatalf("c's round within the grace period: %+v, want 3 downloads of the tombstones", st)
	}

	clk.pastGrace()
	if st := collect(t, ca); st.Collected != 3 || st.Waiting != 0 {
		t.Fatalf("collection past the grace period: %+v, want 3 collected", st)
	}
	for i := range 3 {
		wantAbsent(t, "after a's collection", a, b, fmt.Sprintf("k%d", i))
	}
	// c still holds the tombstones: its rounds find them in sync (the
	// backend's missing object stands for the base tombstone), and a's
	// rounds find nothing to bring back.
	for _, e := range []*Engine{ec, ea} {
		if st := runRound(t, e); st.Applied() != 0 {
			t.Fatalf("%s's round after the collection: %+v, want nothing applied", e.Backend(), st)
		}
	}
	if l, _ := localState(t, c, "k0"); !l.tomb {
		t.Fatalf("c holds %+v, want its tombstone until it collects", l)
	}
	if st := collect(t, cc); st.Collected != 3 {
		t.Fatalf("c's collection: %+v, want 3 (the backend's objects already gone)", st)
	}
	for i := range 3 {
		wantAbsent(t, "after both collections", c, b, fmt.Sprintf("k%d", i))
	}
	converge(t, 2, ea, ec)
	for i := range 3 {
		wantAbsent(t, "after more rounds", a, b, fmt.Sprintf("k%d", i))
		wantAbsent(t, "after more rounds", c, b, fmt.Sprintf("k%d", i))
	}
	if l, _ := localState(t, a, "k4"); l.body != `{"v":1}` {
		t.Fatalf("a live document was touched: %+v", l)
	}
	if got := obs.collected.Load(); got != 6 {
		t.Fatalf("observer counted %d collected tombstones, want 6", got)
	}
}

// TestRecreateAfterCollection: a collects a tombstone c still holds, and a
// client writes the key again on a. The new write must reach c, not be
// deleted by c's tombstone.
func TestRecreateAfterCollection(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	ea, ec := newEngine(t, a, b, nil), newEngine(t, c, b, nil)
	clk := &testClock{}
	ca := newCollector(t, a, clk, nil, ea)
	put(t, a, "x", `{"v":1}`)
	put(t, a, "x", `{"v":2}`)
	converge(t, 3, ea, ec)
	del(t, a, "x")
	converge(t, 3, ea, ec)
	clk.pastGrace()
	if st := collect(t, ca); st.Collected != 1 {
		t.Fatalf("collection: %+v", st)
	}
	again := put(t, a, "x", `{"v":"again"}`)
	if again.Version.Parent != ([16]byte{}) {
		t.Fatalf("the write after the collection derives from %x, want a fresh version", again.Version.Parent)
	}
	converge(t, 4, ea, ec)
	for who, s := range map[string]*store.Store{"a": a, "c": c} {
		if l, _ := localState(t, s, "x"); l.body != `{"v":"again"}` {
			t.Fatalf("%s holds %+v, want the new write", who, l)
		}
	}
}

// TestCollectWaitsForEveryBackend: a tombstone is collected only when
// every backend's base is it; a backend that fails a deletion stops the
// collection, which the next pass finishes.
func TestCollectWaitsForEveryBackend(t *testing.T) {
	b1, b2 := mem.New("b1"), mem.New("b2")
	a := openStore(t, "a")
	e1, e2 := newEngine(t, a, b1, nil), newEngine(t, a, b2, nil)
	clk := &testClock{}
	ca := newCollector(t, a, clk, nil, e1, e2)
	put(t, a, "x", `{}`)
	runRound(t, e1)
	runRound(t, e2)
	del(t, a, "x")
	runRound(t, e1) // only b1 has the tombstone
	clk.pastGrace()
	if st := collect(t, ca); st.Collected != 0 || st.Waiting != 1 {
		t.Fatalf("collection with b2 behind: %+v, want 1 waiting", st)
	}
	if r, _ := remoteState(t, b1, "x"); !r.tomb {
		t.Fatalf("b1 holds %+v, want its tombstone kept until every backend has it", r)
	}

	runRound(t, e2)
	var deletes atomic.Int32
	b2.SetFault(func(op, tenant, key string) error {
		if op == backend.OpDelete {
			deletes.Add(1)
			return fault.New(fault.Transient, fault.Context{}, "b2 is down")
		}
		return nil
	})
	if _, err := ca.Collect(bg, tenant); err == nil || deletes.Load() == 0 {
		t.Fatalf("collection with b2 failing deletes: %v (%d deletes tried), want an error", err, deletes.Load())
	}
	if l, _ := localState(t, a, "x"); !l.tomb {
		t.Fatalf("a holds %+v after a failed collection, want the tombstone", l)
	}
	// b1's object may be gone already: its round must not undo that.
	if st := runRound(t, e1); st.Applied() != 0 {
		t.Fatalf("b1's round after a partial collection: %+v, want nothing applied", st)
	}
	b2.SetFault(nil)
	if st := collect(t, ca); st.Collected != 1 {
		t.Fatalf("collection once b2 is back: %+v", st)
	}
	wantAbsent(t, "b1", a, b1, "x")
	wantAbsent(t, "b2", a, b2, "x")
}

// TestCollectLeavesChangedRemote: when the backend holds something other
// than the base tombstone (another node wrote the key again), nothing is
// collected and the next round brings the new version.
func TestCollectLeavesChangedRemote(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	ea, ec := newEngine(t, a, b, nil), newEngine(t, c, b, nil)
	clk := &testClock{}
	ca := newCollector(t, a, clk, nil, ea)
	put(t, a, "x", `{}`)
	del(t, a, "x")
	converge(t, 3, ea, ec)
	put(t, c, "x", `{"new":1}`)
	runRound(t, ec)
	clk.pastGrace()
	if st := collect(t, ca); st.Collected != 0 || st.Waiting != 1 {
		t.Fatalf("collection under a changed remote: %+v, want 1 waiting", st)
	}
	converge(t, 3, ea, ec)
	if l, _ := localState(t, a, "x"); l.body != `{"new":1}` {
		t.Fatalf("a holds %+v, want c's new write", l)
	}
}

// TestCollectWithoutBackends: with no backend, tombstones go after the
// grace period and the change log is trimmed whole.
func TestCollectWithoutBackends(t *testing.T) {
	a := openStore(t, "a")
	clk, obs := &testClock{}, &countObserver{}
	ca := newCollector(t, a, clk, obs)
	for i := range 5 {
		put(t, a, fmt.Sprintf("k%d", i), `{}`)
	}
	del(t, a, "k1")
	del(t, a, "k3")
	if st := collect(t, ca); st.Collected != 0 || st.Trimmed != 7 {
		t.Fatalf("first pass: %+v, want nothing collected and 7 entries trimmed", st)
	}
	clk.pastGrace()
	if st := collect(t, ca); st.Collected != 2 || st.Examined != 2 || st.Trimmed != 0 {
		t.Fatalf("pass past the grace period: %+v, want 2 collected", st)
	}
	for _, k := range []string{"k1", "k3"} {
		if l, ok := localState(t, a, k); ok {
			t.Fatalf("%s: %+v after the collection", k, l)
		}
	}
	if n := changes(t, a); n != 0 {
		t.Fatalf("%d change-log entries left", n)
	}
	if obs.collected.Load() != 2 || obs.trimmed.Load() != 7 {
		t.Fatalf("observer: %d collected, %d trimmed", obs.collected.Load(), obs.trimmed.Load())
	}
}

// TestTrimChangeLog: the log is trimmed up to the smallest upload
// position over the backends; a backend that is down keeps its entries.
func TestTrimChangeLog(t *testing.T) {
	b1, b2 := mem.New("b1"), mem.New("b2")
	a := openStore(t, "a")
	e1, e2 := newEngine(t, a, b1, nil), newEngine(t, a, b2, nil)
	ca := newCollector(t, a, &testClock{}, nil, e1, e2)
	upload := func(e *Engine) error { _, err := e.Upload(bg, tenant); return err }
	for i := range 10 {
		put(t, a, fmt.Sprintf("k%d", i), `{}`)
	}
	if st := collect(t, ca); st.Trimmed != 0 {
		t.Fatalf("trim before any upload: %+v", st)
	}
	for _, e := range []*Engine{e1, e2} {
		if err := upload(e); err != nil {
			t.Fatal(err)
		}
	}
	if st := collect(t, ca); st.Trimmed != 10 || changes(t, a) != 0 {
		t.Fatalf("trim after both uploads: %+v, %d entries left; want all 10 trimmed", st, changes(t, a))
	}

	for i := range 5 {
		put(t, a, fmt.Sprintf("n%d", i), `{}`)
	}
	b2.SetFault(func(op, tenant, key string) error { return fault.New(fault.Transient, fault.Context{}, "b2 is down") })
	if err := upload(e1); err != nil {
		t.Fatal(err)
	}
	if err := upload(e2); err == nil {
		t.Fatal("upload to a failing backend succeeded")
	}
	if st := collect(t, ca); st.Trimmed != 0 || changes(t, a) != 5 {
		t.Fatalf("trim with b2 down: %+v, %d entries left; want all 5 kept", st, changes(t, a))
	}
	b2.SetFault(nil)
	if err := upload(e2); err != nil {
		t.Fatal(err)
	}
	if st := collect(t, ca); st.Trimmed != 5 || changes(t, a) != 0 {
		t.Fatalf("trim once b2 caught up: %+v, %d entries left", st, changes(t, a))
	}
	// The uploader goes on from its position: a new write is still uploaded.
	put(t, a, "later", `{}`)
	for _, e := range []*Engine{e1, e2} {
		if err := upload(e); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []backend.Backend{b1, b2} {
		if _, ok := remoteState(t, b, "later"); !ok {
			t.Fatalf("%s lacks the write made after the trim", b.Name())
		}
	}
}

// syncObserver signals the first pass that collected something.
type syncObserver struct {
	once sync.Once
	done chan struct{}
}

func (o *syncObserver) TombstonesCollected(n int) {
	if n > 0 {
		o.once.Do(func() { close(o.done) })
	}
}
func (o *syncObserver) ChangesTrimmed(int) {}

// TestCollectorStoppedMidPass: a pass cut short by the node's stop (Run's
// context ending while it deletes a tombstone from a backend) is not
// logged as a failed pass: a WARN at every SIGTERM would read as a fault.
func TestCollectorStoppedMidPass(t *testing.T) {
	b := mem.New("b")
	a := openStore(t, "a")
	e := newEngine(t, a, b, nil)
	put(t, a, "x", `{}`)
	del(t, a, "x")
	runRound(t, e) // the tombstone in the backend too
	clk := &testClock{}
	clk.pastGrace()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.SetFault(func(op, _, _ string) error {
		if op != backend.OpDelete {
			return nil
		}
		once.Do(func() { close(entered) })
		<-release
		return fault.New(fault.Transient, fault.Context{}, "cut short")
	})
	var logs proctest.SyncBuffer
	c, err := NewCollector(CollectorConfig{Store: a, Engines: []*Engine{e}, Grace: testGrace, Interval: time.Millisecond,
		Now: clk.now, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	<-entered // the pass is deleting x's tombstone from the backend
	cancel()
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); strings.Contains(out, "collect: pass failed") {
		t.Fatalf("a pass stopped with the node was logged as failed:\n%s", out)
	}
}

// TestCollectorRun: Run passes every Interval until Close.
func TestCollectorRun(t *testing.T) {
	a := openStore(t, "a")
	put(t, a, "x", `{}`)
	del(t, a, "x")
	obs := &syncObserver{done: make(chan struct{})}
	clk := &testClock{}
	clk.pastGrace()
	c, err := NewCollector(CollectorConfig{Store: a, Grace: testGrace, Interval: time.Millisecond, Now: clk.now, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Run(bg) }()
	select {
	case <-obs.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no pass collected the tombstone")
	}
	c.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, ok := localState(t, a, "x"); ok {
		t.Fatal("x not collected")
	}
	if _, err := NewCollector(CollectorConfig{Store: a, Grace: -1}); !errors.Is(err, fault.ErrConfig) {
		t.Fatalf("negative grace: %v, want a configuration error", err)
	}
}

// TestStaleListingDoesNotReuploadCollected: a round whose listing still
// shows a local tombstone that was collected before the round acted on it
// leaves the key alone rather than uploading the tombstone again.
func TestStaleListingDoesNotReuploadCollected(t *testing.T) {
	b := mem.New("b")
	a := openStore(t, "a")
	var collected atomic.Int32
	ea := newEngine(t, a, b, func(cfg *Config) {
		cfg.beforeApply = func(tn, key string, d Decision) {
			if key == "x" && d.Action == Upload && d.Local.Tombstone && collected.Add(1) == 1 {
				if err := a.Collect(bg, tn, key, d.Local.ID(), []string{"b"}); err != nil {
					t.Error(err)
				}
			}
		}
	})
	put(t, a, "x", `{}`)
	del(t, a, "x")
	st := runRound(t, ea)
	if collected.Load() != 1 {
		t.Fatalf("the hook ran %d times, want once", collected.Load())
	}
	if r, ok := remoteState(t, b, "x"); ok {
		t.Fatalf("the collected tombstone was uploaded from a stale listing: %+v (round %+v)", r, st)
	}
	if st := runRound(t, ea); st.Applied() != 0 {
		t.Fatalf("a round after: %+v, want nothing to do", st)
	}
}
