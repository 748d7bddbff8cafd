package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/fs"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/store"
	"github.com/cairnstore/cairn/internal/telemetry"
)

const tenant = "t1"

var bg = context.Background()

func openStore(t testing.TB, node string) *store.Store {
	t.Helper()
	s, err := store.Open(t.TempDir(), store.Options{NodeID: node, Durability: store.Buffered})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testPolicy retries nothing and, with breaker false, never opens.
func testPolicy(t testing.TB, name string, breaker bool) *resilience.Policy {
	t.Helper()
	cfg := resilience.Config{Backend: name, MaxAttempts: 1, AttemptTimeout: -1}
	if breaker {
		cfg.ConsecutiveFailures = 1
	} else {
		cfg.ConsecutiveFailures, cfg.MinCalls = 1<<30, 1<<30
	}
	p, err := resilience.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newEngine(t testing.TB, s *store.Store, b backend.Backend, mod func(*Config)) *Engine {
	t.Helper()
	// The guard at the scale of these tests' tenants, tens of documents.
	cfg := Config{Store: s, Backend: b, Policy: testPolicy(t, b.Name(), false), Guard: testGuard}
	if mod != nil {
		mod(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// testGuard is DefaultGuard's share with a floor for tenants of tens of
// documents.
var testGuard = Guard{MaxShare: DefaultGuard.MaxShare, Floor: 10}

func put(t testing.TB, s *store.Store, key, body string) store.Record {
	t.Helper()
	rec, err := s.Put(bg, tenant, key, []byte(body), doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func del(t testing.TB, s *store.Store, key string) store.Record {
	t.Helper()
	rec, err := s.Delete(bg, tenant, key, doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func runRound(t testing.TB, e *Engine) Stats {
	t.Helper()
	st, err := e.Round(bg, tenant)
	if err != nil {
		t.Fatalf("Round: %v (stats %+v)", err, st)
	}
	return st
}

// converge runs rounds on the engines in turn until a full turn applies
// nothing; it fails after max turns.
func converge(t testing.TB, max int, es ...*Engine) {
	t.Helper()
	for range max {
		n := 0
		for _, e := range es {
			st := runRound(t, e)
			n += st.Applied()
		}
		if n == 0 {
			return
		}
	}
	t.Fatalf("no convergence after %d turns", max)
}

type docState struct {
	id   doc.ID
	tomb bool
	body string
}

func localState(t testing.TB, s *store.Store, key string) (docState, bool) {
	t.Helper()
	rec, err := s.Get(bg, tenant, key)
	if fault.ClassOf(err) == fault.NotFound {
		return docState{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return docState{rec.Version.ID(), rec.Version.Tombstone, string(rec.Body)}, true
}

func remoteState(t testing.TB, b backend.Backend, key string) (docState, bool) {
	t.Helper()
	obj, err := b.Get(bg, tenant, key)
	if fault.ClassOf(err) == fault.NotFound {
		return docState{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return docState{obj.Version.ID(), obj.Version.Tombstone, string(obj.Body)}, true
}

func TestUploadAndDownload(t *testing.T) {
	for _, kind := range []string{"mem", "fs"} {
		t.Run(kind, func(t *testing.T) {
			var b backend.Backend = mem.New("b")
			if kind == "fs" {
				f, err := fs.Open("b", t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				b = f
			}
			a, c := openStore(t, "a"), openStore(t, "c")
			ea := newEngine(t, a, b, func(c *Config) { c.PageSize = 2 })
			ec := newEngine(t, c, b, func(c *Config) { c.PageSize = 3 })
			for i := range 5 {
				put(t, a, fmt.Sprintf("a%d", i), fmt.Sprintf(`{"a":%d}`, i))
				put(t, c, fmt.Sprintf("c%d", i), fmt.Sprintf(`{"c":%d}`, i))
			}
			if st := runRound(t, ea); st.Actions[Upload] != 5 {
				t.Fatalf("first round: %+v, want 5 uploads", st)
			}
			st := runRound(t, ec)
			if st.Actions[Upload] != 5 || st.Actions[Download] != 5 {
				t.Fatalf("second engine: %+v, want 5 uploads and 5 downloads", st)
			}
			converge(t, 3, ea, ec)
			for _, k := range []string{"a0", "a4", "c0", "c4"} {
				la, _ := localState(t, a, k)
				lc, _ := localState(t, c, k)
				r, _ := remoteState(t, b, k)
				if la != lc || la != r {
					t.Errorf("%s: a %+v, c %+v, backend %+v", k, la, lc, r)
				}
			}
			for _, e := range []*Engine{ea, ec} {
				if st := runRound(t, e); st.Applied() != 0 || st.Scanned != 10 {
					t.Errorf("after convergence: %+v", st)
				}
			}
		})
	}
}

func TestTombstonesPropagateAndStay(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	ea, ec := newEngine(t, a, b, nil), newEngine(t, c, b, nil)
	old := put(t, a, "x", `{"v":1}`)
	converge(t, 4, ea, ec)

	// Delete on c: the tombstone reaches the backend and a.
	del(t, c, "x")
	converge(t, 4, ec, ea)
	for _, s := range []*store.Store{a, c} {
		if l, _ := localState(t, s, "x"); !l.tomb {
			t.Fatalf("x is %+v, want a tombstone", l)
		}
	}
	// An older copy restored on the backend is deleted again, not copied.
	if _, err := b.Put(bg, tenant, "x", old.Version, old.Body, backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	st := runRound(t, ea)
	if st.Actions[Upload] != 1 {
		t.Fatalf("after restoring an old copy: %+v, want one upload of the tombstone", st)
	}
	if r, _ := remoteState(t, b, "x"); !r.tomb {
		t.Fatalf("backend holds %+v, want the tombstone", r)
	}
	converge(t, 3, ea, ec)
	if l, _ := localState(t, c, "x"); !l.tomb {
		t.Fatalf("c: x is %+v, want a tombstone", l)
	}

	// A delete made on a also goes up, and then down to c.
	put(t, a, "y", `{}`)
	converge(t, 3, ea, ec)
	del(t, a, "y")
	converge(t, 3, ea, ec)
	if l, _ := localState(t, c, "y"); !l.tomb {
		t.Fatalf("c: y is %+v, want a tombstone", l)
	}
}

func TestLocalWriteDuringRoundIsKept(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	var hooked atomic.Int32
	ea := newEngine(t, a, b, func(cfg *Config) {
		cfg.beforeApply = func(tn, key string, d Decision) {
			if key == "x" && d.Action == Download && hooked.Add(1) == 1 {
				put(t, a, "x", `{"local":"newer"}`) // between Decide and Apply
			}
		}
	})
	ec := newEngine(t, c, b, nil)
	put(t, a, "x", `{"v":1}`)
	converge(t, 3, ea, ec)
	put(t, c, "x", `{"v":2}`)
	runRound(t, ec)

	st := runRound(t, ea)
	if hooked.Load() != 1 || st.Raced != 1 {
		t.Fatalf("hook ran %d times, stats %+v: want one raced download", hooked.Load(), st)
	}
	if l, _ := localState(t, a, "x"); l.body != `{"local":"newer"}` {
		t.Fatalf("a: x = %+v: the local write was overwritten", l)
	}
	converge(t, 4, ea, ec)
	la, _ := localState(t, a, "x")
	lc, _ := localState(t, c, "x")
	if la != lc {
		t.Fatalf("after convergence a %+v, c %+v", la, lc)
	}
}

// TestRacedConflictNotCounted: a resolution whose write races another
// node's is not counted as a conflict resolved (the metric counted every
// try): the next round decides the key afresh.
func TestRacedConflictNotCounted(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	var hooked atomic.Int32
	ea := newEngine(t, a, b, nil)
	ec := newEngine(t, c, b, func(cfg *Config) {
		cfg.beforeApply = func(tn, key string, d Decision) {
			if key == "x" && d.Action == Conflict && hooked.Add(1) == 1 {
				// Between Decide and Apply, a's newer write reaches the
				// backend: the resolution's put over the object it read
				// fails.
				put(t, a, "x", `{"from":"a","n":2}`)
				if _, err := ea.Upload(bg, tenant); err != nil {
					t.Error(err)
				}
			}
		}
	})
	put(t, a, "x", `{"from":"a"}`)
	put(t, c, "x", `{"from":"c"}`)
	runRound(t, ea)
	st := runRound(t, ec)
	if hooked.Load() != 1 || st.Raced != 1 || st.Conflicts != 0 || st.Losers != 0 {
		t.Fatalf("hook ran %d times, stats %+v: want one raced resolution, no conflict counted", hooked.Load(), st)
	}
	converge(t, 4, ea, ec)
}

func TestConflictResolvesIdenticallyWithoutPingPong(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	ea, ec := newEngine(t, a, b, nil), newEngine(t, c, b, nil)
	put(t, a, "x", `{"from":"a"}`)
	put(t, c, "x", `{"from":"c"}`)
	put(t, a, "y", `{"from":"a"}`)
	put(t, c, "y", `{"from":"c"}`)
	runRound(t, ea)
	st := runRound(t, ec)
	if st.Conflicts != 2 || st.Losers != 2 {
		t.Fatalf("c's round: %+v, want 2 conflicts with 2 losers", st)
	}
	converge(t, 3, ea, ec)
	for _, k := range []string{"x", "y"} {
		la, _ := localState(t, a, k)
		lc, _ := localState(t, c, k)
		r, _ := remoteState(t, b, k)
		if la != lc || la != r {
			t.Fatalf("%s: a %+v, c %+v, backend %+v", k, la, lc, r)
		}
	}
	n := 0
	for rec, err := range c.Conflicts(bg, tenant, "") {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Winner == (doc.ID{}) || rec.Body == nil {
			t.Errorf("conflict record %+v", rec)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("conflict history has %d records, want 2", n)
	}
	for range 3 {
		for _, e := range []*Engine{ea, ec} {
			if st := runRound(t, e); st.Applied() != 0 {
				t.Fatalf("ping-pong: %+v", st)
			}
		}
	}
}

func TestCorruptRemoteSkipped(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	ea, ec := newEngine(t, a, b, nil), newEngine(t, c, b, nil)
	put(t, c, "x", `{"v":1}`)
	put(t, c, "y", `{"v":1}`)
	runRound(t, ec)
	if err := b.Corrupt(bg, tenant, "x", func(raw []byte) []byte { raw[len(raw)-2] ^= 1; return raw }); err != nil {
		t.Fatal(err)
	}
	st := runRound(t, ea)
	if st.Corrupt != 1 || st.Actions[Download] != 1 {
		t.Fatalf("%+v: want 1 corrupt and 1 download", st)
	}
	if _, ok := localState(t, a, "x"); ok {
		t.Fatal("a corrupt object was applied")
	}
	// Without a local copy there is no repair, so nothing is quarantined:
	// the damaged object stays on the backend for a node that has one.
	if rows := quarantineRows(t, a); len(rows) != 0 {
		t.Fatalf("quarantine without a repair: %+v", rows)
	}
}

// TestCorruptRemoteRepaired: a node that holds the key overwrites the
// damaged object with its copy, and another node then downloads the good one.
func TestCorruptRemoteRepaired(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	ea, ec := newEngine(t, a, b, nil), newEngine(t, c, b, nil)
	put(t, c, "x", `{"v":1}`)
	runRound(t, ec)
	// Damage the header's checksum: the object's ETag changes with it, so
	// the node that synced it sees a changed remote and reads it. (A flip
	// in the body alone keeps the ETag; only a read finds it.)
	body := len(`{"v":1}`)
	var damaged []byte
	if err := b.Corrupt(bg, tenant, "x", func(raw []byte) []byte {
		raw[len(raw)-body-backend.ChecksumSize] ^= 1
		damaged = bytes.Clone(raw)
		return raw
	}); err != nil {
		t.Fatal(err)
	}
	damagedETag := backend.ETagOf(damaged)
	if st := runRound(t, ec); st.Corrupt != 1 || st.Repaired != 1 || st.Quarantined != 1 {
		t.Fatalf("%+v: want 1 corrupt, 1 quarantined, 1 repaired", st)
	}
	// The damaged object is in c's quarantine, bytes and all, and the
	// backend holds a good object again.
	rows := quarantineRows(t, c)
	if len(rows) != 1 {
		t.Fatalf("quarantine: %d rows, want 1: %+v", len(rows), rows)
	}
	rows = nil
	for r, err := range c.QuarantineOf(bg, "b", tenant, "x") {
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	if len(rows) != 1 {
		t.Fatalf("quarantine of b/x: %d rows, want 1", len(rows))
	}
	r := rows[0]
	if r.Backend != "b" || r.Tenant != tenant || r.Key != "x" || r.ETag != damagedETag ||
		!bytes.Equal(r.Raw, damaged) || r.Size != int64(len(damaged)) ||
		!strings.Contains(r.Reason, "checksum") || r.Time.IsZero() {
		t.Fatalf("quarantine row %+v (reason %q), want b/%s/x etag %s with the %d damaged bytes", r, r.Reason, tenant, damagedETag, len(damaged))
	}
	if _, err := b.Get(bg, tenant, "x"); err != nil {
		t.Fatalf("after the repair: %v", err)
	}
	if st := runRound(t, ea); st.Corrupt != 0 || st.Actions[Download] != 1 {
		t.Fatalf("%+v: want the repaired object downloaded", st)
	}
	if st := runRound(t, ec); st.Applied() != 0 || st.Quarantined != 0 {
		t.Fatalf("after the repair: %+v", st)
	}
	if n := len(quarantineRows(t, c)) + len(quarantineRows(t, a)); n != 1 {
		t.Fatalf("after more rounds: %d quarantine rows, want the 1", n)
	}
}

func quarantineRows(t *testing.T, s *store.Store) []store.QuarantineRecord {
	t.Helper()
	var rows []store.QuarantineRecord
	for r, err := range s.Quarantine(bg) {
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return rows
}

func TestOpenBreakerSkipsBackend(t *testing.T) {
	b := mem.New("b")
	a := openStore(t, "a")
	var calls atomic.Int32
	b.SetFault(func(op, tenant, key string) error {
		calls.Add(1)
		return fault.New(fault.Transient, fault.Context{}, "partitioned")
	})
	ea := newEngine(t, a, b, func(c *Config) { c.Policy = testPolicy(t, "b", true) })
	put(t, a, "x", `{}`)
	if _, err := ea.Round(bg, tenant); err == nil {
		t.Fatal("round against a failing backend succeeded")
	}
	n := calls.Load()
	_, err := ea.Round(bg, tenant)
	if !errors.Is(err, ErrBackendUnavailable) {
		t.Fatalf("round with an open breaker: %v, want ErrBackendUnavailable", err)
	}
	if calls.Load() != n {
		t.Fatalf("the backend was called %d times with the breaker open", calls.Load()-n)
	}
	if p, _ := ea.Progress(tenant); !errors.Is(p.LastErr, ErrBackendUnavailable) {
		t.Fatalf("progress: %+v", p)
	}
	// The fast path's failures show in the progress too (it runs on its
	// own, with no caller to return them to).
	if _, err := ea.Upload(bg, tenant); !errors.Is(err, ErrBackendUnavailable) {
		t.Fatalf("upload with an open breaker: %v", err)
	}
	if p, _ := ea.Progress(tenant); !errors.Is(p.LastUploadErr, ErrBackendUnavailable) {
		t.Fatalf("progress after a failed upload: %+v", p)
	}
}

func TestCheckpointResume(t *testing.T) {
	b := mem.New("b")
	a := openStore(t, "a")
	const n, every, crashAt = 50, 10, 25
	for i := range n {
		put(t, a, fmt.Sprintf("k%02d", i), `{}`)
	}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	seen := 0
	e1 := newEngine(t, a, b, func(c *Config) {
		c.CheckpointEvery, c.PageSize = every, 7
		c.beforeApply = func(_, _ string, _ Decision) {
			if seen++; seen == crashAt {
				cancel() // the "crash": nothing after this is saved
			}
		}
	})
	if _, err := e1.Round(ctx, tenant); !errors.Is(err, context.Canceled) {
		t.Fatalf("first round: %v, want canceled", err)
	}
	e2 := newEngine(t, a, b, func(c *Config) { c.CheckpointEvery, c.PageSize = every, 7 })
	st := runRound(t, e2)
	if st.ResumedAfter != "k19" {
		t.Fatalf("resumed after %q, want k19", st.ResumedAfter)
	}
	// The first engine fully handled crashAt-1 keys; the second scanned
	// from the checkpoint: the overlap is the work redone.
	if redone := crashAt - 1 + st.Scanned - n; st.Scanned != n-20 || redone > every {
		t.Fatalf("scanned %d after resuming (%d redone), want %d (≤ %d redone)", st.Scanned, redone, n-20, every)
	}
	for i := range n {
		if _, ok := remoteState(t, b, fmt.Sprintf("k%02d", i)); !ok {
			t.Fatalf("k%02d not uploaded", i)
		}
	}
	if st := runRound(t, e2); st.Applied() != 0 || st.Scanned != n || st.ResumedAfter != "" {
		t.Fatalf("round after the resumed one: %+v", st)
	}
}

func TestUploaderFastPath(t *testing.T) {
	b := mem.New("b")
	a := openStore(t, "a")
	e := newEngine(t, a, b, func(c *Config) { c.PageSize, c.UploadConcurrency = 4, 3 })
	for i := range 20 {
		put(t, a, fmt.Sprintf("k%02d", i), fmt.Sprintf(`{"i":%d}`, i))
	}
	put(t, a, "k00", `{"i":"again"}`)
	st, err := e.Upload(bg, tenant)
	if err != nil || st.Actions[Upload] != 20 {
		t.Fatalf("Upload: %+v, %v; want 20 uploads", st, err)
	}
	if r, _ := remoteState(t, b, "k00"); r.body != `{"i":"again"}` {
		t.Fatalf("k00 on the backend: %+v", r)
	}
	if st, err := e.Upload(bg, tenant); err != nil || st.Scanned != 0 {
		t.Fatalf("second Upload: %+v, %v; want nothing", st, err)
	}
	del(t, a, "k05")
	if st, err := e.Upload(bg, tenant); err != nil || st.Actions[Upload] != 1 {
		t.Fatalf("Upload after a delete: %+v, %v", st, err)
	}
	if r, _ := remoteState(t, b, "k05"); !r.tomb {
		t.Fatalf("k05 on the backend: %+v", r)
	}
	if st := runRound(t, e); st.Applied() != 0 {
		t.Fatalf("round after the uploader: %+v, want nothing to do", st)
	}
}

// guardSetup is two engines on one backend, a's and c's: c's documents
// converged to a, then some deleted on c and uploaded (the fast path has
// no guard), for a's rounds to meet.
type guardSetup struct {
	b      *mem.Mem
	a, c   *store.Store
	ea, ec *Engine
}

// deletedOnPeer makes a guardSetup with n documents, the first deleted of
// them deleted.
func deletedOnPeer(t *testing.T, n, deleted int) guardSetup {
	t.Helper()
	return deletedOnPeerWith(t, n, deleted, nil, nil)
}

// deletedOnPeerWith is deletedOnPeer with the engines of a and c
// configured by cfgA and cfgC (nil: as they come).
func deletedOnPeerWith(t *testing.T, n, deleted int, cfgA, cfgC func(*Config)) guardSetup {
	t.Helper()
	g := guardSetup{b: mem.New("b"), a: openStore(t, "a"), c: openStore(t, "c")}
	g.ea, g.ec = newEngine(t, g.a, g.b, cfgA), newEngine(t, g.c, g.b, cfgC)
	for i := range n {
		put(t, g.c, fmt.Sprintf("k%02d", i), `{}`)
	}
	converge(t, 3, g.ec, g.ea)
	for i := range deleted {
		del(t, g.c, fmt.Sprintf("k%02d", i))
	}
	if _, err := g.ec.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestMassDeleteGuard(t *testing.T) {
	g := deletedOnPeer(t, 20, 15)
	b, a, c, ea, ec := g.b, g.a, g.c, g.ea, g.ec
	_, err := ea.Round(bg, tenant)
	if !errors.Is(err, ErrNeedsConfirm) {
		t.Fatalf("round deleting 15 of 20: %v, want ErrNeedsConfirm", err)
	}
	left := countLive(t, a)
	// Until confirmed, the next rounds stop too, at their first deletion:
	// counted afresh against what is left, the rest would pass.
	for range 2 {
		if _, err := ea.Round(bg, tenant); !errors.Is(err, ErrNeedsConfirm) {
			t.Fatalf("round after a guard stop, unconfirmed: %v, want ErrNeedsConfirm", err)
		}
		if n := countLive(t, a); n != left {
			t.Fatalf("an unconfirmed round after a guard stop deleted %d more", left-n)
		}
	}
	// A restart does not forget it.
	ea.Close()
	ea = newEngine(t, a, b, nil)
	if _, err := ea.Round(bg, tenant); !errors.Is(err, ErrNeedsConfirm) || countLive(t, a) != left {
		t.Fatalf("round after a restart, unconfirmed: %v, %d live of %d", err, countLive(t, a), left)
	}
	ea.Confirm(tenant)
	st := runRound(t, ea)
	if live := countLive(t, a); live != 5 || st.ResumedAfter == "" {
		t.Fatalf("after confirming: %d live, stats %+v", live, st)
	}
	// The confirmed round ended the hold.
	for i := 15; i < 18; i++ {
		del(t, c, fmt.Sprintf("k%02d", i))
	}
	if _, err := ec.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := ea.Round(bg, tenant); err != nil {
		t.Fatalf("a round within the guard after a confirmed one: %v", err)
	}
}

// TestHeldRoundsLogOnce: the round that stops at the guard says so; the
// rounds that stop again while the tenant is held say so once a minute,
// not once a round, and each is counted.
func TestHeldRoundsLogOnce(t *testing.T) {
	var buf bytes.Buffer // the rounds run on this goroutine
	obs := &actionObserver{actions: map[string]int{}}
	ea := deletedOnPeerWith(t, 20, 15, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
		cfg.Observer = obs
	}, nil).ea
	for range 4 {
		if _, err := ea.Round(bg, tenant); !errors.Is(err, ErrNeedsConfirm) {
			t.Fatalf("round: %v, want ErrNeedsConfirm", err)
		}
	}
	logs := buf.String()
	if n := strings.Count(logs, `"msg":"reconcile: round stopped by the mass-deletion guard"`); n != 1 {
		t.Errorf("%d \"round stopped\" lines for 4 rounds, want 1:\n%s", n, logs)
	}
	if n := strings.Count(logs, `"msg":"reconcile: the mass-deletion guard holds the tenant`); n != 1 {
		t.Errorf("%d \"holds the tenant\" lines for 3 held rounds, want 1:\n%s", n, logs)
	}
	if n := obs.count(ActionGuardStop); n != 4 {
		t.Errorf("guard_stop counted %d times for 4 stopped rounds, want 4", n)
	}
}

// TestGuardHoldsAcrossBackends: deletions the guard stopped on one
// backend do not come in through another of the node's backends, whose
// own share would let them through, until confirmed.
func TestGuardHoldsAcrossBackends(t *testing.T) {
	b, b2 := mem.New("b"), mem.New("b2")
	a, c := openStore(t, "a"), openStore(t, "c")
	ea := newEngine(t, a, b, nil)
	ea2 := newEngine(t, a, b2, func(cfg *Config) { cfg.HeldElsewhere = ea.Held })
	ec, ec2 := newEngine(t, c, b, nil), newEngine(t, c, b2, nil)
	for i := range 20 {
		put(t, c, fmt.Sprintf("k%02d", i), `{}`)
	}
	converge(t, 3, ec, ea, ec2, ea2)
	for i := range 15 {
		del(t, c, fmt.Sprintf("k%02d", i))
	}
	for _, e := range []*Engine{ec, ec2} {
		if _, err := e.Upload(bg, tenant); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ea.Round(bg, tenant); !errors.Is(err, ErrNeedsConfirm) {
		t.Fatalf("round deleting 15 of 20 through b: %v, want ErrNeedsConfirm", err)
	}
	left := countLive(t, a)
	if !ea.Held(tenant) {
		t.Fatal("the tenant is not held on b after the guard stop")
	}
	if _, err := ea2.Round(bg, tenant); !errors.Is(err, ErrNeedsConfirm) || countLive(t, a) != left {
		t.Fatalf("round through b2 while held on b: %v, %d live of %d; want ErrNeedsConfirm and none deleted", err, countLive(t, a), left)
	}
	ea.Confirm(tenant)
	ea2.Confirm(tenant)
	runRound(t, ea)
	runRound(t, ea2)
	if live := countLive(t, a); live != 5 {
		t.Fatalf("after confirming on both: %d live, want 5", live)
	}
}

func countLive(t *testing.T, s *store.Store) int {
	t.Helper()
	n := 0
	for _, err := range s.List(bg, tenant, store.ListOptions{KeysOnly: true}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

func TestRunLoop(t *testing.T) {
	b := mem.New("b")
	a := openStore(t, "a")
	e := newEngine(t, a, b, nil)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	put(t, a, "x", `{}`)
	st, err := e.RunRound(bg, tenant)
	if err != nil || st.Actions[Upload] != 1 {
		t.Fatalf("RunRound: %+v, %v", st, err)
	}
	put(t, a, "y", `{}`)
	e.Changed(tenant)
	// RunRound is served after the change in Run's inbox or in the same
	// select: either way, once it answers, y is on the backend.
	if _, err := e.RunRound(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if _, ok := remoteState(t, b, "y"); !ok {
		t.Fatal("y not replicated")
	}
	if p, ok := e.Progress(tenant); !ok || p.Running || p.LastErr != nil || p.Last.Scanned != 2 {
		t.Fatalf("progress %+v", p)
	}
	e.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

var _ Observer = (*telemetry.Metrics)(nil)

// TestUploaderAndRoundConcurrently runs the uploader and rounds of one
// engine at once while clients write, then checks that both sides agree:
// the in-flight set keeps them off each other's keys, and any decision
// made stale by a write is skipped, not applied.
func TestUploaderAndRoundConcurrently(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	ea := newEngine(t, a, b, func(c *Config) { c.PageSize, c.UploadConcurrency = 3, 4 })
	ec := newEngine(t, c, b, nil)
	for i := range 30 {
		put(t, c, fmt.Sprintf("k%02d", i), `{"from":"c"}`)
	}
	runRound(t, ec)
	done := make(chan struct{})
	errs := make(chan error, 2)
	go func() {
		defer close(done)
		for i := range 60 {
			key := fmt.Sprintf("k%02d", i%30)
			if _, err := a.Put(bg, tenant, key, fmt.Appendf(nil, `{"i":%d}`, i), doc.Precondition{}); err != nil {
				errs <- err
				return
			}
		}
	}()
	uploaded := make(chan struct{})
	go func() {
		defer close(uploaded)
		for {
			if _, err := ea.Upload(bg, tenant); err != nil {
				errs <- err
				return
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	for {
		if _, err := ea.Round(bg, tenant); err != nil {
			t.Fatal(err)
		}
		select {
		case <-uploaded:
		default:
			continue
		}
		break
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if _, err := ea.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	converge(t, 4, ea, ec)
	for i := range 30 {
		k := fmt.Sprintf("k%02d", i)
		la, _ := localState(t, a, k)
		lc, _ := localState(t, c, k)
		r, _ := remoteState(t, b, k)
		if la != lc || la != r {
			t.Fatalf("%s: a %+v, c %+v, backend %+v", k, la, lc, r)
		}
		if want := fmt.Sprintf(`{"i":%d}`, i+30); la.body != want {
			t.Fatalf("%s = %s, want a's last write %s", k, la.body, want)
		}
	}
	if ea.inflight.Len() != 0 {
		t.Fatalf("%d keys still in flight", ea.inflight.Len())
	}
}

// TestGuardPassesWhileCatchingUp: a tenant catching up (a node restored
// from a pack older than the deletions) takes the backend's deletions
// without a guard stop: they were made by clients and applied everywhere
// else already.
func TestGuardPassesWhileCatchingUp(t *testing.T) {
	b := mem.New("b")
	c := openStore(t, "c")
	ec := newEngine(t, c, b, nil)
	var old []store.Record
	for i := range 20 {
		old = append(old, put(t, c, fmt.Sprintf("k%02d", i), `{}`))
	}
	if _, err := ec.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		del(t, c, fmt.Sprintf("k%02d", i))
	}
	if _, err := ec.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	a := openStore(t, "a")
	for _, rec := range old { // what a pack made before the deletions holds
		if _, err := a.Apply(bg, tenant, rec.Key, rec.Version, rec.Body, doc.ID{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	ea := newEngine(t, a, b, nil)
	if _, err := ea.Round(bg, tenant); err != nil {
		t.Fatalf("a catching-up round applying 15 deletions of 20: %v", err)
	}
	if n := countLive(t, a); n != 5 {
		t.Fatalf("%d live after the catching-up round, want 5", n)
	}
}

// TestAppliedCountsEachKeyOnce: a download read first (FetchRemote, then
// Download) is one key applied, not two.
func TestAppliedCountsEachKeyOnce(t *testing.T) {
	var st Stats
	st.Actions[InSync], st.Actions[FetchRemote], st.Actions[Download] = 5, 3, 3
	if n := st.Applied(); n != 3 {
		t.Fatalf("Applied() = %d with 3 downloads read first, want 3", n)
	}
}

// TestGuardStopReachesRoundsUnderWay: a round under way when the feed (or
// another round) stops at the guard stops at its next deletion: counting
// its own share, it would let the rest through.
func TestGuardStopReachesRoundsUnderWay(t *testing.T) {
	g := deletedOnPeer(t, 40, 8) // 20%: within the share
	a, ea := g.a, g.ea
	r, err := ea.startRound(bg, tenant)
	if err != nil {
		t.Fatal(err)
	}
	ea.hold(bg, tenant, true) // what the feed's stop does meanwhile
	_, err = r.step(bg, 0)
	if _, err = ea.finishRound(bg, r, err); !errors.Is(err, ErrNeedsConfirm) {
		t.Fatalf("round under way when the tenant was held: %v, want ErrNeedsConfirm", err)
	}
	if n := countLive(t, a); n != 40 {
		t.Fatalf("%d live after the held round, want 40", n)
	}
}

// TestHoldEndsWithARoundThatPasses: a round that ends without a stop
// ends the hold, one with nothing to delete included, so that a tenant
// whose deletions tripped the guard once does not wait for an operator
// ever after; a confirmed round ends it too.
func TestHoldEndsWithARoundThatPasses(t *testing.T) {
	g := deletedOnPeer(t, 20, 0)
	g.ea.hold(bg, tenant, true)
	runRound(t, g.ea)
	if held, err := g.ea.held(tenant); err != nil || held {
		t.Fatalf("after a round with nothing to delete: held %v (%v), want not held", held, err)
	}
	g.ea.hold(bg, tenant, true)
	g.ea.Confirm(tenant)
	runRound(t, g.ea)
	if held, err := g.ea.held(tenant); err != nil || held {
		t.Fatalf("after a confirmed round: held %v (%v), want not held", held, err)
	}
}

// TestHeldDeletionsKeepTheirTombstones: while a node holds deletions at
// the guard, the other nodes' collectors keep their tombstones, past the
// grace, so that the held node never reads them as documents the backend
// lost and uploads its copies back over them; once confirmed and applied,
// they are collected.
func TestHeldDeletionsKeepTheirTombstones(t *testing.T) {
	clk := &testClock{}
	now := func(cfg *Config) { cfg.Now = clk.now }
	g := deletedOnPeerWith(t, 20, 15, now, now)
	a, c, ea, ec := g.a, g.c, g.ea, g.ec
	if _, err := ea.Round(bg, tenant); !errors.Is(err, ErrNeedsConfirm) {
		t.Fatalf("round deleting 15 of 20: %v, want ErrNeedsConfirm", err)
	}
	left := countLive(t, a)
	cc := newCollector(t, c, clk, nil, ec)
	clk.pastGrace()
	if _, err := ea.Round(bg, tenant); !errors.Is(err, ErrNeedsConfirm) { // a stop writes the marker again
		t.Fatalf("round past the grace, unconfirmed: %v, want ErrNeedsConfirm", err)
	}
	if st := collect(t, cc); st.Collected != 0 || st.Held != 1 {
		t.Fatalf("c's collection while a holds the tenant: %+v, want nothing collected, the tenant held", st)
	}
	for range 2 {
		if _, err := ea.Round(bg, tenant); !errors.Is(err, ErrNeedsConfirm) {
			t.Fatalf("round after c's collection, unconfirmed: %v, want ErrNeedsConfirm", err)
		}
	}
	if n := countLive(t, a); n != left {
		t.Fatalf("%d live on a after the unconfirmed rounds, want %d", n, left)
	}
	ea.Confirm(tenant)
	runRound(t, ea)
	if n := countLive(t, a); n != 5 {
		t.Fatalf("after confirming: %d live on a, want 5", n)
	}
	converge(t, 3, ea, ec)
	if st := collect(t, cc); st.Held != 0 || st.Collected == 0 {
		t.Fatalf("c's collection after the hold ended: %+v, want tombstones collected", st)
	}
	if n := countLive(t, c); n != 5 {
		t.Fatalf("c holds %d live, want 5", n)
	}
}

// TestStaleHoldMarkerDisregarded: a hold marker older than the grace (its
// node has run no round for that long) does not keep tombstones, and the
// collector removes it.
func TestStaleHoldMarkerDisregarded(t *testing.T) {
	clk, b, _, c, ea, ec := oneKeyOnTwo(t)
	ea.hold(bg, tenant, true) // its marker, then nothing for longer than the grace
	del(t, c, "k")
	converge(t, 3, ec)
	cc := newCollector(t, c, clk, nil, ec)
	clk.pastGrace()
	if st := collect(t, cc); st.Held != 0 || st.Collected != 1 {
		t.Fatalf("collection past a stale marker: %+v, want the tombstone collected", st)
	}
	if page, err := b.ListBlobs(bg, holdPrefix(tenant), "", 0); err != nil || len(page.Entries) != 0 {
		t.Fatalf("hold markers after the collection: %+v, %v; want the stale one removed", page.Entries, err)
	}
}

// oneKeyOnTwo makes nodes a and c on backend b, on one test clock, both
// holding document k.
func oneKeyOnTwo(t *testing.T) (clk *testClock, b *mem.Mem, a, c *store.Store, ea, ec *Engine) {
	t.Helper()
	clk = &testClock{}
	now := func(cfg *Config) { cfg.Now = clk.now }
	b = mem.New("b")
	a, c = openStore(t, "a"), openStore(t, "c")
	ea, ec = newEngine(t, a, b, now), newEngine(t, c, b, now)
	put(t, c, "k", `{}`)
	converge(t, 3, ec, ea)
	return clk, b, a, c, ea, ec
}

// TestOwnHoldKeepsTombstones: a node's collector keeps the tombstones of a
// tenant the node itself holds, whatever its marker's age.
func TestOwnHoldKeepsTombstones(t *testing.T) {
	clk, _, a, c, ea, ec := oneKeyOnTwo(t)
	del(t, c, "k")
	converge(t, 3, ec, ea)
	ea.hold(bg, tenant, true)
	ca := newCollector(t, a, clk, nil, ea)
	clk.pastGrace() // the marker is stale by now
	if st := collect(t, ca); st.Held != 1 || st.Collected != 0 {
		t.Fatalf("a's collection of a tenant a holds: %+v, want nothing collected, the tenant held", st)
	}
}

// TestHoldMarkerRefreshed: a held tenant's marker is written again when a
// tenth of the grace has passed since it was, not at every call.
func TestHoldMarkerRefreshed(t *testing.T) {
	clk := &testClock{}
	b := mem.New("b")
	a := openStore(t, "a")
	ea := newEngine(t, a, b, func(cfg *Config) { cfg.Now, cfg.TombstoneGrace = clk.now, testGrace })
	ea.hold(bg, tenant, true)
	written := func() string {
		t.Helper()
		page, err := b.ListBlobs(bg, holdPrefix(tenant), "", 0)
		if err != nil || len(page.Entries) != 1 {
			t.Fatalf("hold markers: %+v, %v; want one", page.Entries, err)
		}
		data, _, err := b.GetBlob(bg, page.Entries[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	first := written()
	ea.refreshHold(bg, tenant)
	if got := written(); got != first {
		t.Fatalf("marker rewritten at once: %q, was %q", got, first)
	}
	clk.skew.Store(int64(testGrace / 5))
	ea.refreshHold(bg, tenant)
	if got := written(); got == first {
		t.Fatalf("marker not rewritten a fifth of the grace later: %q", got)
	}
}

// TestRunRoundConfirmed: a confirmed round asked of Run passes the guard
// and reports the deletions it applied; the confirmation is not left for
// another round.
func TestRunRoundConfirmed(t *testing.T) {
	g := deletedOnPeer(t, 20, 15)
	if _, err := g.ea.Round(bg, tenant); !errors.Is(err, ErrNeedsConfirm) {
		t.Fatalf("round deleting 15 of 20: %v, want ErrNeedsConfirm", err)
	}
	runEngine(t, g.ea)
	st, err := g.ea.RunRoundConfirmed(bg, tenant)
	if err != nil || st.Deletes == 0 || countLive(t, g.a) != 5 {
		t.Fatalf("confirmed round: %+v, %v, %d live; want the deletions applied and reported", st, err, countLive(t, g.a))
	}
	if g.ea.takeConfirm(tenant) {
		t.Fatal("a confirmation left behind for another round")
	}
}

// TestHoldOutlivesARoundBegunBeforeIt: a round that began before the feed
// stopped at the guard, or during which it stopped again, and ends without
// a deletion of its own to stop at, does not lift the hold: it listed keys
// before those deletions.
func TestHoldOutlivesARoundBegunBeforeIt(t *testing.T) {
	g := deletedOnPeer(t, 20, 0)
	r, err := g.ea.startRound(bg, tenant)
	if err != nil {
		t.Fatal(err)
	}
	g.ea.hold(bg, tenant, true) // the feed's stop, meanwhile
	_, err = r.step(bg, 0)
	if _, err := g.ea.finishRound(bg, r, err); err != nil {
		t.Fatal(err)
	}
	if held, err := g.ea.held(tenant); err != nil || !held {
		t.Fatalf("after a round begun before the hold: held %v (%v), want held", held, err)
	}
	// Begun while held, with the feed stopping at the guard again while it
	// ran: the new stop's deletions may be among the keys it passed.
	r, err = g.ea.startRound(bg, tenant)
	if err != nil {
		t.Fatal(err)
	}
	g.ea.hold(bg, tenant, true)
	_, err = r.step(bg, 0)
	if _, err := g.ea.finishRound(bg, r, err); err != nil {
		t.Fatal(err)
	}
	if held, err := g.ea.held(tenant); err != nil || !held {
		t.Fatalf("after a round the feed stopped at the guard during: held %v (%v), want held", held, err)
	}
	runRound(t, g.ea) // begun while held, nothing to delete: lifts it
	if held, err := g.ea.held(tenant); err != nil || held {
		t.Fatalf("after a round begun while held: held %v (%v), want not held", held, err)
	}
}

// TestBackendUnavailableExhausted: a round skipped for an open breaker is
// counted and logged as load shed (exhausted), as runbook 1 reads it, with
// or without the cause that opened it.
func TestBackendUnavailableExhausted(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("backend.get s3: %w", ErrBackendUnavailable),
		fmt.Errorf("%w: %w", ErrBackendUnavailable, fault.New(fault.Transient, fault.Context{}, "timeout")),
	} {
		if c := fault.ClassOf(err); c != fault.Exhausted || !errors.Is(err, ErrBackendUnavailable) {
			t.Errorf("%v: class %v, want exhausted and ErrBackendUnavailable", err, c)
		}
	}
}

// TestProgressBetweenCheckpoints: a round shows the keys it scanned and
// the documents it downloaded every few hundred keys, not only at its
// checkpoints, so that a restore's status moves as it goes.
func TestProgressBetweenCheckpoints(t *testing.T) {
	b := mem.New("b")
	src := openStore(t, "src")
	for i := range 450 {
		put(t, src, fmt.Sprintf("k%04d", i), `{}`)
	}
	converge(t, 2, newEngine(t, src, b, nil))
	dst := openStore(t, "dst")
	var e *Engine
	var seen []int
	applied := 0
	e = newEngine(t, dst, b, func(c *Config) {
		c.CheckpointEvery = 1000
		c.Failpoint = func(name string) {
			if name != "reconcile.apply.after" {
				return
			}
			if applied++; applied%150 == 0 {
				p, _ := e.Progress(tenant)
				seen = append(seen, p.Downloaded)
			}
		}
	})
	runRound(t, e)
	// After 150, 300 and 450 downloads, the progress shown lags by at most
	// progressEvery.
	if len(seen) != 3 {
		t.Fatalf("progress read %d times, want 3", len(seen))
	}
	for i, d := range seen {
		if want := 150 * (i + 1); d < want-progressEvery || d > want {
			t.Errorf("after %d downloads, progress showed %d", want, d)
		}
	}
}

// TestLostTombstonePutBack: a round that finds the backend without the
// object of a tombstone younger than half the grace puts it back (it was
// lost, not collected: the collector removes none so young), and one past
// half the grace is taken as collected.
func TestLostTombstonePutBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		age   time.Duration
		wants bool
	}{{"young", time.Minute, true}, {"past half the grace", 40 * time.Minute, false}} {
		t.Run(tc.name, func(t *testing.T) {
			b := mem.New("b")
			s := openStore(t, "n")
			var now atomic.Int64
			now.Store(time.Now().UnixNano())
			e := newEngine(t, s, b, func(c *Config) {
				c.TombstoneGrace = time.Hour
				c.Now = func() time.Time { return time.Unix(0, now.Load()) }
			})
			put(t, s, "k", `{}`)
			runRound(t, e)
			del(t, s, "k")
			runRound(t, e)
			if st, ok := remoteState(t, b, "k"); !ok || !st.tomb {
				t.Fatalf("the backend holds %+v %v, want the tombstone", st, ok)
			}
			if err := b.Delete(bg, tenant, "k", backend.Precondition{}); err != nil {
				t.Fatal(err)
			}
			now.Add(int64(tc.age))
			runRound(t, e)
			if st, ok := remoteState(t, b, "k"); ok != tc.wants || (ok && !st.tomb) {
				t.Errorf("after a round: the backend holds %+v %v, want the tombstone back: %v", st, ok, tc.wants)
			}
		})
	}
}
