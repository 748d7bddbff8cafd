package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/store"
)

// counting records the backend calls made through it, in order, as
// "op key outcome" ("put k ok", "put k precondition_failed", "get k ok").
type counting struct {
	backend.Backend
	mu    sync.Mutex // guards calls
	calls []string
}

func (c *counting) record(op, key string, err error) {
	out := "ok"
	if err != nil {
		out = fault.ClassOf(err).String()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, op+" "+key+" "+out)
}

func (c *counting) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls := c.calls
	c.calls = nil
	return calls
}

func (c *counting) List(ctx context.Context, t string, o backend.ListOptions) (backend.Page, error) {
	p, err := c.Backend.List(ctx, t, o)
	c.record("list", o.Prefix, err)
	return p, err
}

func (c *counting) Get(ctx context.Context, t, k string) (*backend.Object, error) {
	o, err := c.Backend.Get(ctx, t, k)
	c.record("get", k, err)
	return o, err
}

func (c *counting) Stat(ctx context.Context, t, k string) (backend.Entry, error) {
	e, err := c.Backend.Stat(ctx, t, k)
	c.record("stat", k, err)
	return e, err
}

func (c *counting) Put(ctx context.Context, t, k string, v doc.Version, body []byte, pre backend.Precondition) (string, error) {
	e, err := c.Backend.Put(ctx, t, k, v, body, pre)
	c.record("put", k, err)
	return e, err
}

func (c *counting) Delete(ctx context.Context, t, k string, pre backend.Precondition) error {
	err := c.Backend.Delete(ctx, t, k, pre)
	c.record("delete", k, err)
	return err
}

func upload(t *testing.T, e *Engine) Stats {
	t.Helper()
	st, err := e.Upload(bg, tenant)
	if err != nil {
		t.Fatalf("Upload: %v (stats %+v)", err, st)
	}
	return st
}

// TestUploadOneRequestPerWrite: 1,000 writes of distinct keys, new and
// then rewritten, cost one backend request each.
func TestUploadOneRequestPerWrite(t *testing.T) {
	s := openStore(t, "a")
	cb := &counting{Backend: mem.New("b")}
	e := newEngine(t, s, cb, nil)
	for round := range 2 { // created, then replaced over the recorded base
		for i := range 1000 {
			put(t, s, fmt.Sprintf("k%04d", i), fmt.Sprintf(`{"i":%d,"round":%d}`, i, round))
		}
		st := upload(t, e)
		calls := cb.take()
		if len(calls) > 1000 || st.Actions[Upload] != 1000 {
			t.Fatalf("round %d: %d backend calls (%v…) and %d uploads for 1,000 writes, want 1,000 puts",
				round, len(calls), calls[:min(4, len(calls))], st.Actions[Upload])
		}
		for _, c := range calls {
			if !strings.HasPrefix(c, "put ") || !strings.HasSuffix(c, " ok") {
				t.Fatalf("round %d: call %q, want only puts that succeed", round, c)
			}
		}
	}
	// Written again with nothing new: no request at all.
	if st := upload(t, e); len(cb.take()) != 0 || st.Applied() != 0 {
		t.Fatalf("a drained log: %+v", st)
	}
}

// TestUploadSettlesPreconditionFailed: when the remote is not what the base
// says, the put's 412 is settled as a round settles the key: the table
// gives the backend calls made (the first is always the conditional put:
// no stat) and what the key ends as.
type fixture struct {
	s, peer *store.Store
	e, pe   *Engine // pe: the peer's engine, on the same backend, not counted
	m       *mem.Mem
}

func TestUploadSettlesPreconditionFailed(t *testing.T) {
	cases := []struct {
		name   string
		policy Policy
		// setup leaves key "k" with a local change to upload.
		setup func(t *testing.T, f *fixture)
		calls []string
		check func(t *testing.T, f *fixture, st Stats)
	}{{
		name: "no base, nothing remote",
		setup: func(t *testing.T, f *fixture) {
			put(t, f.s, "k", `{"v":1}`)
		},
		calls: []string{"put k ok"},
	}, {
		name: "base unchanged remotely",
		setup: func(t *testing.T, f *fixture) {
			put(t, f.s, "k", `{"v":1}`)
			upload(t, f.e)
			put(t, f.s, "k", `{"v":2}`)
		},
		calls: []string{"put k ok"},
	}, {
		name: "a local delete",
		setup: func(t *testing.T, f *fixture) {
			put(t, f.s, "k", `{"v":1}`)
			upload(t, f.e)
			del(t, f.s, "k")
		},
		calls: []string{"put k ok"},
		check: func(t *testing.T, f *fixture, st Stats) {
			if r, _ := remoteState(t, f.m, "k"); !r.tomb || st.Deletes != 1 {
				t.Errorf("remote %+v, %d deletes: want the tombstone uploaded", r, st.Deletes)
			}
		},
	}, {
		name: "remote changed by a peer (lww)",
		setup: func(t *testing.T, f *fixture) {
			put(t, f.s, "k", `{"v":1}`)
			upload(t, f.e)
			runRound(t, f.pe)
			put(t, f.peer, "k", `{"v":"peer"}`)
			upload(t, f.pe)
			put(t, f.s, "k", `{"v":"local"}`)
		},
		calls: []string{"put k precondition_failed", "get k ok", "put k ok"},
		check: func(t *testing.T, f *fixture, st Stats) {
			if st.Conflicts != 1 || st.Losers != 1 {
				t.Errorf("stats %+v: want one conflict with its loser recorded", st)
			}
			if n := countConflicts(t, f.s, "k"); n != 1 {
				t.Errorf("%d conflict records, want the loser's", n)
			}
		},
	}, {
		name:   "remote changed by a peer (manual: siblings)",
		policy: Policy{Strategy: Manual},
		setup: func(t *testing.T, f *fixture) {
			put(t, f.s, "k", `{"v":1}`)
			upload(t, f.e)
			runRound(t, f.pe)
			put(t, f.peer, "k", `{"v":"peer"}`)
			upload(t, f.pe)
			put(t, f.s, "k", `{"v":"local"}`)
		},
		calls: []string{"put k precondition_failed", "get k ok", "put k ok"},
		check: func(t *testing.T, f *fixture, st Stats) {
			if st.Siblings != 1 {
				t.Errorf("stats %+v: want a sibling set", st)
			}
		},
	}, {
		name:   "remote changed by a peer (merge, base body kept)",
		policy: Policy{Strategy: Merge, Fallback: LWW},
		setup: func(t *testing.T, f *fixture) {
			put(t, f.s, "k", `{"a":1,"b":1}`)
			upload(t, f.e)
			runRound(t, f.pe)
			put(t, f.peer, "k", `{"a":1,"b":2}`)
			upload(t, f.pe)
			put(t, f.s, "k", `{"a":2,"b":1}`)
		},
		calls: []string{"put k precondition_failed", "get k ok", "put k ok"},
		check: func(t *testing.T, f *fixture, st Stats) {
			l, _ := localState(t, f.s, "k")
			if got := jsonOf(t, l.body); got["a"] != 2.0 || got["b"] != 2.0 {
				t.Errorf("merged %s, want both edits", l.body)
			}
		},
	}, {
		name: "remote deleted by a peer",
		setup: func(t *testing.T, f *fixture) {
			put(t, f.s, "k", `{"v":1}`)
			upload(t, f.e)
			runRound(t, f.pe)
			del(t, f.peer, "k")
			upload(t, f.pe)
			put(t, f.s, "k", `{"v":"local"}`)
		},
		calls: []string{"put k precondition_failed", "get k ok", "put k ok"},
		check: func(t *testing.T, f *fixture, st Stats) {
			if st.Conflicts != 1 {
				t.Errorf("stats %+v: want the concurrent delete resolved as a conflict", st)
			}
		},
	}, {
		name: "remote object gone",
		setup: func(t *testing.T, f *fixture) {
			put(t, f.s, "k", `{"v":1}`)
			upload(t, f.e)
			if err := f.m.Delete(bg, tenant, "k", backend.Precondition{}); err != nil {
				t.Fatal(err)
			}
			put(t, f.s, "k", `{"v":2}`)
		},
		calls: []string{"put k precondition_failed", "get k not_found", "put k ok"},
	}, {
		name: "remote holds the local version, base not recorded (crashed upload)",
		setup: func(t *testing.T, f *fixture) {
			put(t, f.s, "k", `{"v":1}`)
			upload(t, f.e)
			crashedUpload(t, f, put(t, f.s, "k", `{"v":2}`))
		},
		calls: []string{"put k precondition_failed", "get k ok"},
		check: func(t *testing.T, f *fixture, st Stats) {
			if st.Actions[UpdateBase] != 1 || st.Actions[Upload] != 0 {
				t.Errorf("stats %+v: want the base recorded, no second upload", st)
			}
		},
	}, {
		name: "remote holds the local version, no base at all (crashed first upload)",
		setup: func(t *testing.T, f *fixture) {
			crashedUpload(t, f, put(t, f.s, "k", `{"v":1}`))
		},
		calls: []string{"put k precondition_failed", "get k ok"},
	}, {
		name: "corrupt remote found after the 412",
		setup: func(t *testing.T, f *fixture) {
			put(t, f.s, "k", `{"v":1}`)
			upload(t, f.e)
			runRound(t, f.pe)
			put(t, f.peer, "k", `{"v":"peer"}`)
			upload(t, f.pe)
			if err := f.m.Corrupt(bg, tenant, "k", func(b []byte) []byte { b[len(b)-2] ^= 0x20; return b }); err != nil {
				t.Fatal(err)
			}
			put(t, f.s, "k", `{"v":2}`)
		},
		calls: []string{"put k precondition_failed", "get k corruption", "stat k ok", "put k ok"},
		check: func(t *testing.T, f *fixture, st Stats) {
			if st.Corrupt != 1 || st.Repaired != 1 || st.Quarantined != 1 {
				t.Errorf("stats %+v: want the damaged object quarantined and repaired", st)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fixture{s: openStore(t, "a"), peer: openStore(t, "p"), m: mem.New("b")}
			cb := &counting{Backend: f.m}
			pol := func(c *Config) { c.PolicyFor = func(string) Policy { return tc.policy } }
			f.e, f.pe = newEngine(t, f.s, cb, pol), newEngine(t, f.peer, f.m, pol)
			tc.setup(t, f)
			cb.take()
			st := upload(t, f.e)
			if got := cb.take(); strings.Join(got, "; ") != strings.Join(tc.calls, "; ") {
				t.Errorf("backend calls:\n got %q\nwant %q", got, tc.calls)
			}
			if tc.check != nil {
				tc.check(t, f, st)
			}
			// Settled: the node and the backend agree, the base records it,
			// and a round (or the peer's) finds nothing left to do.
			l, _ := localState(t, f.s, "k")
			r, _ := remoteState(t, f.m, "k")
			if l.id != r.id {
				t.Errorf("local %+v, remote %+v: not settled", l, r)
			}
			if again := runRound(t, f.e); again.Applied() != 0 {
				t.Errorf("a round after the upload still applied %+v", again.Actions)
			}
			converge(t, 3, f.pe, f.e)
		})
	}
}

// crashedUpload puts rec's version to the backend as an upload that
// crashed before its base was recorded would have.
func crashedUpload(t *testing.T, f *fixture, rec store.Record) {
	t.Helper()
	if _, err := f.m.Put(bg, tenant, "k", rec.Version, rec.Body, backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
}

func countConflicts(t *testing.T, s *store.Store, key string) int {
	t.Helper()
	n := 0
	for _, err := range s.Conflicts(bg, tenant, key) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// TestUploadPageReportsWhatItWrote: uploadPage returns each object it put,
// with the version and the backend's ETag, and nothing for a key it had
// nothing to upload for.
func TestUploadPageReportsWhatItWrote(t *testing.T) {
	s := openStore(t, "a")
	m := mem.New("b")
	e := newEngine(t, s, m, nil)
	put(t, s, "same", `{"v":1}`)
	upload(t, e)
	want := map[string]store.Record{"a": put(t, s, "a", `{"a":1}`), "b": put(t, s, "b", `{"b":1}`)}
	want["b"] = del(t, s, "b")
	var batch []store.Change
	for c, err := range s.Changes(bg, tenant, 0, 100) {
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, c)
	}
	var st Stats
	sent, err := e.uploadPage(bg, tenant, batch, &st)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != len(want) {
		t.Fatalf("uploadPage reported %+v, want %d objects", sent, len(want))
	}
	for _, u := range sent {
		rec, ok := want[u.Key]
		ent, err := m.Stat(bg, tenant, u.Key)
		if !ok || err != nil || u.Version.ID() != rec.Version.ID() || u.ETag != ent.ETag {
			t.Errorf("reported %s %v %s; want version %v, backend ETag %s (%v)", u.Key, u.Version.ID(), u.ETag, rec.Version.ID(), ent.ETag, err)
		}
	}
}

// heldPuts, once hold is set, holds every put until release is closed,
// and counts the puts their callers cancelled while held.
type heldPuts struct {
	*mem.Mem
	hold      atomic.Bool
	release   chan struct{}
	mu        sync.Mutex // guards cancelled
	cancelled int
}

func (h *heldPuts) Put(ctx context.Context, tenant, key string, v doc.Version, body []byte, pre backend.Precondition) (string, error) {
	if !h.hold.Load() {
		return h.Mem.Put(ctx, tenant, key, v, body, pre)
	}
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	// A caller's cancellation follows the refusal that releases the put
	// at once; the pause gives it the time to arrive.
	select {
	case <-ctx.Done():
		h.mu.Lock()
		h.cancelled++
		h.mu.Unlock()
		return "", ctx.Err()
	case <-time.After(200 * time.Millisecond):
	}
	return h.Mem.Put(ctx, tenant, key, v, body, pre)
}

// refusals closes refused at the first backend call the breaker refused.
type refusals struct {
	roundObserver
	once    sync.Once
	refused chan struct{}
}

func (r *refusals) ObserveBackend(_, _ string, err error, _ time.Duration) {
	if fault.ClassOf(err) == fault.Exhausted {
		r.once.Do(func() { close(r.refused) })
	}
}

// TestHalfOpenDrainLetsProbesFinish: when the breaker turns half-open, a
// drain with more keys than probe permits has the keys beyond them
// refused; the probes in flight are not cancelled for it, succeed, and
// close the breaker. Cancelled, they would count as successes against a
// backend still down, or keep it open against one that is back.
func TestHalfOpenDrainLetsProbesFinish(t *testing.T) {
	const probes, keys = 3, 20
	obs := &refusals{roundObserver: roundObserver{onRound: func(error) {}}, refused: make(chan struct{})}
	b := &heldPuts{Mem: mem.New("b"), release: obs.refused}
	pol, err := resilience.New(resilience.Config{Backend: "b", MaxAttempts: 1, AttemptTimeout: -1,
		ConsecutiveFailures: 1, MinCalls: 1 << 30, OpenDelay: 50 * time.Millisecond, HalfOpenProbes: probes})
	if err != nil {
		t.Fatal(err)
	}
	a := openStore(t, "a")
	e := newEngine(t, a, b, func(c *Config) { c.Policy, c.Observer, c.UploadConcurrency = pol, obs, 8 })
	for i := range keys {
		put(t, a, fmt.Sprintf("k%02d", i), `{}`)
	}
	b.SetFault(func(string, string, string) error { return fault.New(fault.Transient, fault.Context{}, "down") })
	if _, err := e.Upload(bg, tenant); err == nil {
		t.Fatal("upload to a failing backend succeeded")
	}
	if pol.OpenFor() <= 0 {
		t.Fatalf("breaker %v after a failure, want open", pol.State())
	}
	b.SetFault(nil)
	b.hold.Store(true)
	time.Sleep(pol.OpenFor()) // the breaker's delay is wall-clock time
	if _, err := e.Upload(bg, tenant); fault.ClassOf(err) != fault.Exhausted && !errors.Is(err, ErrBackendUnavailable) {
		t.Fatalf("half-open drain: %v, want the refusal of the keys beyond the probes", err)
	}
	b.mu.Lock()
	cancelled := b.cancelled
	b.mu.Unlock()
	if cancelled != 0 {
		t.Fatalf("%d probes cancelled because a sibling was refused", cancelled)
	}
	if pol.State() != resilience.Closed {
		t.Fatalf("breaker %v after %d successful probes, want closed", pol.State(), probes)
	}
	if _, err := e.Upload(bg, tenant); err != nil {
		t.Fatalf("drain after the breaker closed: %v", err)
	}
	for i := range keys {
		if _, err := b.Stat(bg, tenant, fmt.Sprintf("k%02d", i)); err != nil {
			t.Fatalf("k%02d not uploaded: %v", i, err)
		}
	}
}
