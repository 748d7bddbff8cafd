package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// roundObserver is an Observer that calls onRound at the end of each round
// (on the goroutine that ran it) and ignores the rest.
type roundObserver struct {
	onRound func(err error)
}

func (o *roundObserver) ReconcileRound(_ string, err error, _ time.Duration) { o.onRound(err) }
func (o *roundObserver) ReconcileKeys(string, int)                           {}
func (o *roundObserver) ReconcileAction(string, string)                      {}
func (o *roundObserver) ReconcileConflict(string, string)                    {}
func (o *roundObserver) ReconcileBytes(string, int64, int64)                 {}

func putIn(t testing.TB, s *store.Store, tenant, key string) {
	t.Helper()
	if _, err := s.Put(bg, tenant, key, []byte(`{}`), doc.Precondition{}); err != nil {
		t.Fatal(err)
	}
}

// runEngine runs e.Run until the test ends.
func runEngine(t *testing.T, e *Engine) { runEngineB(t, e) }

// uploadedTenant writes n documents k000… to tenant in s and uploads them
// to b, draining the tenant's change log.
func uploadedTenant(t *testing.T, s *store.Store, b backend.Backend, tenant string, n int) {
	t.Helper()
	for i := range n {
		putIn(t, s, tenant, fmt.Sprintf("k%03d", i))
	}
	if _, err := newEngine(t, s, b, nil).Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
}

func runEngineB(t testing.TB, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestDrainsDoNotStallThePass: over a backend so slow that every drain
// of a hot tenant's change log outlasts the coalescing window, a drain is
// always due while writes flow; a pass started meanwhile still finishes
// another tenant's round.
func TestDrainsDoNotStallThePass(t *testing.T) {
	const keys = 200
	a := openStore(t, "a")
	b := mem.New("b")
	uploadedTenant(t, a, b, "big", keys)
	rounds := make(chan struct{}, 1)
	var e *Engine
	e = newEngine(t, a, b, func(c *Config) {
		c.CheckpointEvery, c.PageSize, c.CoalesceWindow = 10, 10, 5*time.Millisecond
		c.Observer = &roundObserver{onRound: func(error) {
			if p, _ := e.Progress("big"); !p.Running && p.Last.Scanned == keys {
				select {
				case rounds <- struct{}{}:
				default:
				}
			}
		}}
	})
	b.SetFault(func(string, string, string) error {
		time.Sleep(15 * time.Millisecond) // a slow link, not synchronisation: every drain outlasts the window
		return nil
	})
	runEngine(t, e)
	// A writer rewriting five hot keys every millisecond until the test ends.
	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if _, err := a.Put(bg, "hot", fmt.Sprintf("h%d", i%5), []byte(`{}`), doc.Precondition{}); err != nil {
				t.Errorf("put: %v", err)
				return
			}
			e.Changed("hot")
		}
	})
	t.Cleanup(func() { close(stop); writer.Wait() })
	e.Trigger()
	select {
	case <-rounds:
	case <-time.After(30 * time.Second):
		p, _ := e.Progress("big")
		t.Fatalf("the pass's round of the big tenant did not finish while the hot tenant's drains ran: %+v", p)
	}
}

// TestPassIsFairAcrossTenants: a pass interleaves tenants a turn at a
// time, so a small tenant listed after a big one finishes its round while
// the big one is mid-round (a pass that ran whole rounds in tenant order
// would finish the big one first).
func TestPassIsFairAcrossTenants(t *testing.T) {
	const big, small = 300, 5
	a := openStore(t, "a")
	b := mem.New("b")
	// The big tenant's documents are on the backend already (its change
	// log drained): its round has 300 keys to scan.
	uploadedTenant(t, a, b, "a-big", big)
	for i := range small {
		putIn(t, a, "b-small", fmt.Sprintf("k%d", i))
	}
	type snap struct{ small, big Progress }
	var (
		e      *Engine
		mu     sync.Mutex // guards snaps
		snaps  []snap
		rounds = make(chan struct{}, 2)
	)
	e = newEngine(t, a, b, func(c *Config) {
		c.CheckpointEvery, c.PageSize = 10, 10
		c.Observer = &roundObserver{onRound: func(err error) {
			if err != nil {
				t.Errorf("round: %v", err)
			}
			s, _ := e.Progress("b-small")
			b, _ := e.Progress("a-big")
			mu.Lock()
			snaps = append(snaps, snap{s, b})
			mu.Unlock()
			rounds <- struct{}{}
		}}
	})
	runEngine(t, e)
	e.Trigger()
	<-rounds
	<-rounds
	mu.Lock()
	defer mu.Unlock()
	first := snaps[0]
	if first.small.Running || first.small.Last.Scanned != small {
		t.Fatalf("the first round to finish was not the small tenant's: small %+v", first.small)
	}
	if !first.big.Running || first.big.Scanned == 0 || first.big.Scanned >= big {
		t.Fatalf("when the small tenant finished, the big one: %+v; want mid-round", first.big)
	}
	if last := snaps[1].big; last.Running || last.Last.Scanned != big || last.Last.Actions[InSync] != big {
		t.Fatalf("big tenant's round: %+v", last)
	}
	// Its whole round was one round, over many turns: the size estimate
	// for percent done comes from it.
	if snaps[1].big.Estimate != big {
		t.Fatalf("estimate %d, want %d", snaps[1].big.Estimate, big)
	}
}

// TestPassUploadsAreFair: a tenant with a long change log drains it a
// turn at a time too, so a small tenant after it is replicated before the
// big one's log is.
func TestPassUploadsAreFair(t *testing.T) {
	const big, small = 300, 5
	a := openStore(t, "a")
	b := mem.New("b")
	for i := range big {
		putIn(t, a, "a-big", fmt.Sprintf("k%03d", i))
	}
	for i := range small {
		putIn(t, a, "b-small", fmt.Sprintf("k%d", i))
	}
	onBackend := func(tn string) int {
		p, err := b.List(bg, tn, backend.ListOptions{Limit: 1000})
		if err != nil {
			t.Error(err)
		}
		return len(p.Entries)
	}
	first := make(chan [2]int, 2)
	e := newEngine(t, a, b, func(c *Config) {
		c.CheckpointEvery, c.PageSize = 10, 10
		c.Observer = &roundObserver{onRound: func(error) { first <- [2]int{onBackend("b-small"), onBackend("a-big")} }}
	})
	runEngine(t, e)
	e.Trigger()
	got := <-first
	<-first
	if got[0] != small || got[1] >= big {
		t.Fatalf("at the first round's end: %d of %d small and %d of %d big documents on the backend; want all small, not all big",
			got[0], small, got[1], big)
	}
	if n := onBackend("a-big"); n != big {
		t.Fatalf("after the pass: %d of %d big documents on the backend", n, big)
	}
}

// TestRunRoundAdoptsPassRound: a round asked for while the pass has the
// tenant's round under way carries that round to its end (one round, all
// keys) instead of starting another.
func TestRunRoundAdoptsPassRound(t *testing.T) {
	const n = 100
	a := openStore(t, "a")
	b := mem.New("b")
	for i := range n {
		putIn(t, a, tenant, fmt.Sprintf("k%03d", i))
	}
	if _, err := newEngine(t, a, b, nil).Upload(bg, tenant); err != nil { // the pass goes straight to the round
		t.Fatal(err)
	}
	var (
		rounds  atomic.Int32
		asked   = make(chan struct{})
		answers = make(chan Stats, 1)
		e       *Engine
	)
	e = newEngine(t, a, b, func(c *Config) {
		c.CheckpointEvery, c.PageSize = 10, 10
		c.Observer = &roundObserver{onRound: func(error) { rounds.Add(1) }}
		c.beforeApply = func(_, key string, _ Decision) {
			if key == "k030" { // mid-round, on Run's goroutine: ask from another
				go func() {
					st, err := e.RunRound(bg, tenant)
					if err != nil {
						t.Errorf("RunRound: %v", err)
					}
					answers <- st
				}()
				// Hold the round until the request is queued, so that Run
				// sees it between this turn and the next (without the wait
				// the round could finish first and RunRound start another).
				for len(e.requests) == 0 {
					time.Sleep(time.Millisecond)
				}
				close(asked)
			}
		}
	})
	runEngine(t, e)
	e.Trigger()
	<-asked
	st := <-answers
	if st.Scanned != n || st.ResumedAfter != "" || st.Actions[InSync] != n {
		t.Fatalf("RunRound's answer: %+v; want the pass's round, all %d keys", st, n)
	}
	if got := rounds.Load(); got != 1 {
		t.Fatalf("%d rounds ran, want 1", got)
	}
}

// TestSlowBackendSlowsListing: the round lists a page of the backend only
// after handling the previous one, however slow the backend is: nothing
// runs ahead of the writes.
func TestSlowBackendSlowsListing(t *testing.T) {
	const n, page = 30, 5
	shared := mem.New("b")
	c := openStore(t, "c")
	for i := range n {
		put(t, c, fmt.Sprintf("k%02d", i), `{}`)
	}
	runRound(t, newEngine(t, c, shared, nil))
	g := newLister(shared)
	a := openStore(t, "a")
	e := newEngine(t, a, g, func(c *Config) { c.PageSize = page })
	done := make(chan error, 1)
	go func() { _, err := e.Round(bg, tenant); done <- err }()
	for {
		select {
		case <-g.entered:
			// A call is held inside the backend: the listing may be at
			// most one page ahead of the keys read so far.
			if l, r := g.lists.Load(), g.gets.Load(); l > r/page+1 {
				t.Fatalf("%d pages listed with %d keys read (page %d): the listing ran ahead", l, r, page)
			}
			g.gate <- struct{}{}
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if g.gets.Load() != n {
				t.Fatalf("%d reads, want %d", g.gets.Load(), n)
			}
			return
		}
	}
}

// newLister is a gated backend that also counts lists and reads.
func newLister(b backend.Backend) *listCounter {
	return &listCounter{gatedBackend: newGated(b)}
}

type listCounter struct {
	*gatedBackend
	lists, gets atomic.Int64
}

func (l *listCounter) List(ctx context.Context, tenant string, o backend.ListOptions) (backend.Page, error) {
	l.lists.Add(1)
	return l.gatedBackend.List(ctx, tenant, o)
}

func (l *listCounter) Get(ctx context.Context, tenant, key string) (*backend.Object, error) {
	l.gets.Add(1)
	return l.gatedBackend.Get(ctx, tenant, key)
}

// TestChangedInboxIsBounded: change notifications for any number of
// tenants wait as a set, drained each once, and reach every tenant without
// a pass (no round runs: rounds are the interval's work).
func TestChangedInboxIsBounded(t *testing.T) {
	const tenants = 100
	a := openStore(t, "a")
	b := mem.New("b")
	puts := make(chan string, tenants)
	b.SetFault(func(op, tenant, _ string) error {
		if op == backend.OpPut {
			puts <- tenant
		}
		return nil
	})
	var rounds atomic.Int32
	e := newEngine(t, a, b, func(c *Config) {
		c.Observer = &roundObserver{onRound: func(error) { rounds.Add(1) }}
	})
	for i := range tenants {
		tn := fmt.Sprintf("t%03d", i)
		putIn(t, a, tn, "k")
		e.Changed(tn)
		e.Changed(tn) // told twice, drained once
	}
	if len(e.changed) != 1 || len(e.triggers) != 0 || len(e.changedWant) != tenants {
		t.Fatalf("inbox %d, triggers %d, tenants waiting %d; want one notification, no pass, %d tenants",
			len(e.changed), len(e.triggers), len(e.changedWant), tenants)
	}
	runEngine(t, e)
	seen := map[string]bool{}
	for range tenants {
		seen[<-puts] = true
	}
	if len(seen) != tenants {
		t.Fatalf("uploads reached %d tenants, want %d", len(seen), tenants)
	}
	e.Close() // Run has returned: every upload it started is done
	for i := range tenants {
		if _, err := b.Stat(bg, fmt.Sprintf("t%03d", i), "k"); err != nil {
			t.Fatalf("t%03d/k not replicated: %v", i, err)
		}
	}
	if n := rounds.Load(); n != 0 {
		t.Fatalf("%d rounds ran; want none: the notifications are drains, not a pass", n)
	}
}

// TestOpenBreakerPassRetriedLater: a pass that meets an open breaker stops
// (the tenants after it are not touched), and the engine comes back on its
// own when the breaker lets a probe through, with no trigger and no
// interval.
func TestOpenBreakerPassRetriedLater(t *testing.T) {
	b := mem.New("b")
	var failing atomic.Bool
	var calls atomic.Int32
	failing.Store(true)
	b.SetFault(func(op, tenant, key string) error {
		calls.Add(1)
		if failing.Load() {
			return fault.New(fault.Transient, fault.Context{}, "partitioned")
		}
		return nil
	})
	pol, err := resilience.New(resilience.Config{Backend: "b", MaxAttempts: 1, AttemptTimeout: -1,
		ConsecutiveFailures: 1, MinCalls: 1 << 30, OpenDelay: 300 * time.Millisecond, HalfOpenProbes: 1})
	if err != nil {
		t.Fatal(err)
	}
	a := openStore(t, "a")
	for _, tn := range []string{"t1", "t2", "t3"} {
		putIn(t, a, tn, "k")
	}
	var (
		mu   sync.Mutex // guards errs
		errs []error
		ok   = make(chan struct{}, 3)
		fail = make(chan struct{}, 10)
	)
	e := newEngine(t, a, b, func(c *Config) {
		c.Policy = pol
		c.Observer = &roundObserver{onRound: func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			if err == nil {
				ok <- struct{}{}
			} else {
				fail <- struct{}{}
			}
		}}
	})
	runEngine(t, e)
	e.Trigger()
	<-fail
	// The first pass: one call failed and opened the breaker; the round
	// ended unavailable without another call; t2 and t3 were skipped.
	mu.Lock()
	first := errs[0]
	mu.Unlock()
	if !errors.Is(first, ErrBackendUnavailable) || calls.Load() != 1 {
		t.Fatalf("first round: %v after %d backend calls; want unavailable after 1", first, calls.Load())
	}
	for _, tn := range []string{"t2", "t3"} {
		if p, ok := e.Progress(tn); ok {
			t.Fatalf("%s was not skipped: %+v", tn, p)
		}
	}
	failing.Store(false)
	for range 3 {
		<-ok
	}
	for _, tn := range []string{"t1", "t2", "t3"} {
		if _, err := b.Stat(bg, tn, "k"); err != nil {
			t.Fatalf("%s/k after the retry: %v", tn, err)
		}
	}
	if pol.State() != resilience.Closed {
		t.Fatalf("breaker %v after the retry, want closed", pol.State())
	}
}

// TestUnavailableWithPendingWrites: while the backend is unavailable and a
// tenant has writes not yet uploaded, every pass ends at that tenant's
// upload, before any round begins; each still counts and shows a failed
// round of the tenant, as a pass of an idle node does.
func TestUnavailableWithPendingWrites(t *testing.T) {
	b := mem.New("b")
	b.SetFault(func(op, tenant, key string) error {
		return fault.New(fault.Transient, fault.Context{}, "partitioned")
	})
	pol, err := resilience.New(resilience.Config{Backend: "b", MaxAttempts: 1, AttemptTimeout: -1,
		ConsecutiveFailures: 1, MinCalls: 1 << 30, OpenDelay: 20 * time.Millisecond, HalfOpenProbes: 1})
	if err != nil {
		t.Fatal(err)
	}
	a := openStore(t, "a")
	putIn(t, a, "t1", "k") // never uploaded: every pass starts with its upload
	failed := make(chan error, 100)
	e := newEngine(t, a, b, func(c *Config) {
		c.Policy = pol
		c.Observer = &roundObserver{onRound: func(err error) {
			select {
			case failed <- err:
			default:
			}
		}}
	})
	runEngine(t, e)
	// Writes keep coming: their drains take the breaker's half-open
	// probes, so each pass meets the breaker open at its first upload.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := a.Put(bg, "t1", "k", []byte(`{}`), doc.Precondition{}); err != nil {
					t.Error(err)
					return
				}
				e.Changed("t1")
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	e.Trigger()
	for i := range 3 {
		select {
		case err := <-failed:
			if !errors.Is(err, ErrBackendUnavailable) {
				t.Fatalf("round %d: %v, want unavailable", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d failed rounds counted in 10s of passes against an unavailable backend, want 3", i)
		}
	}
	p, ok := e.Progress("t1")
	if !ok || !errors.Is(p.LastErr, ErrBackendUnavailable) || p.Last.Tenant != "t1" {
		t.Fatalf("t1's progress %+v, want its last round failed unavailable", p)
	}
}

// TestReplicationLag: a change not yet uploaded ages; an upload that
// drains the log brings the lag back to 0, and a failed one does not.
func TestReplicationLag(t *testing.T) {
	var skew atomic.Int64 // added to the wall clock: the test's "later"
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	b := mem.New("b")
	a := openStore(t, "a")
	e := newEngine(t, a, b, func(c *Config) { c.Now = now })
	if lag := e.ReplicationLag(); lag != 0 {
		t.Fatalf("lag %v with nothing written", lag)
	}
	put(t, a, "x", `{}`)
	e.Changed(tenant)
	skew.Store(int64(10 * time.Second))
	if lag := e.ReplicationLag(); lag < 10*time.Second || lag > 15*time.Second {
		t.Fatalf("lag %v ten seconds after a change, want about 10s", lag)
	}
	b.SetFault(func(op, _, _ string) error { return fault.New(fault.Transient, fault.Context{}, "down") })
	if _, err := e.Upload(bg, tenant); err == nil {
		t.Fatal("upload to a failing backend succeeded")
	}
	if lag := e.ReplicationLag(); lag < 10*time.Second {
		t.Fatalf("lag %v after a failed upload, want ≥ 10s", lag)
	}
	b.SetFault(nil)
	if _, err := e.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if lag := e.ReplicationLag(); lag != 0 {
		t.Fatalf("lag %v after the upload, want 0", lag)
	}
}

// TestReplicationLagAfterRestart: a node restarts with changes it wrote
// and never uploaded, while its backend is down. The lag must count them
// from the start, though no pass reaches their tenant past the open
// breaker, or the lag alert stays quiet through exactly that outage.
func TestReplicationLagAfterRestart(t *testing.T) {
	later := func() time.Time { return time.Now().Add(time.Hour) } // the writes were made an hour ago
	b := mem.New("b")
	pol, err := resilience.New(resilience.Config{Backend: "b", MaxAttempts: 1, AttemptTimeout: -1,
		ConsecutiveFailures: 1, MinCalls: 1 << 30, OpenDelay: time.Hour, HalfOpenProbes: 1})
	if err != nil {
		t.Fatal(err)
	}
	_ = pol.Run(bg, backend.OpList, func(context.Context) error {
		return fault.New(fault.Transient, fault.Context{}, "partitioned")
	})
	if pol.State() != resilience.Open {
		t.Fatalf("breaker %v, want open", pol.State())
	}
	a := openStore(t, "a")
	putIn(t, a, "zz", "k") // written before the restart, never uploaded
	e := newEngine(t, a, b, func(c *Config) { c.Policy, c.Now, c.Tenants = pol, later, []string{"aa"} })
	runEngine(t, e)
	// Answered by Run's loop, so Run has started; the pass meets the
	// breaker at aa and skips zz.
	if _, err := e.RunRound(bg, "aa"); !errors.Is(err, ErrBackendUnavailable) {
		t.Fatalf("aa's round: %v, want the backend unavailable", err)
	}
	if lag := e.ReplicationLag(); lag < 59*time.Minute {
		t.Fatalf("lag %v with an hour-old write never uploaded, want about 1h", lag)
	}
}

// TestChangedDrainsATurnAtATime: a tenant's long change log, announced by
// Changed, is drained a turn at a time, so a round asked for meanwhile is
// answered before the whole log is uploaded.
func TestChangedDrainsATurnAtATime(t *testing.T) {
	const n = 500
	a := openStore(t, "a")
	b := mem.New("b")
	for i := range n {
		putIn(t, a, "big", fmt.Sprintf("k%03d", i))
	}
	putIn(t, a, "small", "k")
	e := newEngine(t, a, b, func(c *Config) { c.CheckpointEvery, c.PageSize = 10, 10 })
	e.Changed("big")
	runEngine(t, e)
	st, err := e.RunRound(bg, "small")
	if err != nil || st.Actions[Upload] != 1 {
		t.Fatalf("small's round: %+v, %v", st, err)
	}
	p, err := b.List(bg, "big", backend.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) >= n {
		t.Fatalf("all %d of big's changes were uploaded before small's round was answered", len(p.Entries))
	}
	// The rest follows on its own.
	if st, err := e.RunRound(bg, "big"); err != nil || st.Scanned != n {
		t.Fatalf("big's round: %+v, %v", st, err)
	}
}

// storeWithCopy is node a's store holding x as another node wrote it, as
// a download or a restore leaves it.
func storeWithCopy(t *testing.T) *store.Store {
	t.Helper()
	peer := openStore(t, "peer")
	rec := put(t, peer, "x", `{}`)
	a := openStore(t, "a")
	if _, err := a.Apply(bg, tenant, "x", rec.Version, rec.Body, doc.ID{}, nil); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestReplicationLagLeavesRestoredVersionsOut: a version the node
// downloaded or restored is in its change log but has nothing to upload;
// its time, its writer's, does not count as lag, so a restore of old
// documents does not show their age as the lag.
func TestReplicationLagLeavesRestoredVersionsOut(t *testing.T) {
	later := func() time.Time { return time.Now().Add(time.Hour) } // the documents were written an hour ago
	b := mem.New("b")
	a := storeWithCopy(t)
	e := newEngine(t, a, b, func(c *Config) { c.Now = later })
	e.Copied(tenant) // as the node's commit feed tells of the restore's writes
	b.SetFault(func(op, _, _ string) error { return fault.New(fault.Transient, fault.Context{}, "down") })
	_, _ = e.Upload(bg, tenant)
	if lag := e.ReplicationLag(); lag > time.Minute {
		t.Fatalf("lag %v with only a restored version in the log, want about 0", lag)
	}
	// A drain that reads the log to its end clears the mark.
	b.SetFault(nil)
	if _, err := e.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if lag := e.ReplicationLag(); lag != 0 {
		t.Fatalf("lag %v after a drain of the restored version, want 0", lag)
	}
}

// TestCopiedIsNotLag: versions another node wrote, told as Copied (as the
// node's commit feed tells a download or a restore), are uploaded like any
// change but never counted as lag, however long the engine takes to drain
// them; a version this node wrote, told as Changed, is.
func TestCopiedIsNotLag(t *testing.T) {
	now := time.Now()
	b := mem.New("b")
	a := storeWithCopy(t)
	e := newEngine(t, a, b, func(c *Config) { c.Now = func() time.Time { return now } })
	e.Copied(tenant)
	now = now.Add(time.Hour) // the engine busy with a long round
	if lag := e.ReplicationLag(); lag != 0 {
		t.Fatalf("lag %v with only a copied version told, want 0", lag)
	}
	if _, err := e.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(bg, tenant, "x"); err != nil {
		t.Fatalf("the copied version was not uploaded: %v", err)
	}
	put(t, a, "y", `{}`)
	e.Changed(tenant)
	now = now.Add(time.Minute)
	if lag := e.ReplicationLag(); lag != time.Minute {
		t.Fatalf("lag %v a minute after the node's own write was told, want 1m", lag)
	}
}

// TestRoundNotHeldByAGrowingLog: a tenant whose change log grows as fast as
// its upload turns drain it (writes arriving over a slow backend) still
// gets its round, where the pass gave it upload turns until the log was
// drained, that is never: upload and round turns alternate, and what the
// log holds when the round ends is left to Changed's news.
func TestRoundNotHeldByAGrowingLog(t *testing.T) {
	a := openStore(t, "a")
	b := mem.New("b")
	for i := range 10 {
		putIn(t, a, "hot", fmt.Sprintf("k%d", i))
	}
	e := newEngine(t, a, b, func(c *Config) { c.TurnKeys, c.CheckpointEvery, c.PageSize = 2, 2, 2 })
	s := &sched{e: e}
	s.start(bg)
	turns := 0
	for ; s.busy() && turns < 1000; turns++ {
		s.turn(bg)
		for i := range 3 { // more than a turn uploads
			putIn(t, a, "hot", fmt.Sprintf("k%d", (turns+i)%10))
		}
	}
	if s.busy() {
		t.Fatalf("the pass still runs after %d turns: the round was held back by the growing log", turns)
	}
	p, ok := e.AllProgress()["hot"]
	if !ok || p.Last.Started.IsZero() || p.LastErr != nil || p.Last.Scanned != 10 {
		t.Fatalf("hot's round after the pass: %+v", p)
	}
	if told := e.takeChanged(); !slices.Contains(told, "hot") {
		t.Fatalf("the log left undrained was not told as a change: %v", told)
	}
}

// TestCopiedBacklogNotLag: copied versions more than a turn holds are
// drained a turn at a time, and told again between turns without being
// counted as lag, where the re-telling marked them as this node's writes.
func TestCopiedBacklogNotLag(t *testing.T) {
	now := time.Now()
	peer := openStore(t, "peer")
	a := openStore(t, "a")
	for i := range 6 {
		rec := put(t, peer, fmt.Sprintf("x%d", i), `{}`)
		if _, err := a.Apply(bg, tenant, rec.Key, rec.Version, rec.Body, doc.ID{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	e := newEngine(t, a, mem.New("b"), func(c *Config) {
		c.Now = func() time.Time { return now }
		c.TurnKeys, c.PageSize = 2, 2
	})
	e.Copied(tenant)
	s := &sched{e: e}
	s.changedAll(bg) // one turn: two of six, the rest told again
	now = now.Add(time.Hour)
	if lag := e.ReplicationLag(); lag != 0 {
		t.Fatalf("lag %v with only copied versions waiting, want 0", lag)
	}
}

// TestScrubYieldsToDrains: when the scrub's tick and a change notification
// are both waiting, the write is uploaded first, and the scrub still has
// its turn, so that steady writes do not stop it; and a scrub turn reads
// no more than the backend's call rate allows in a tick, so that a rate
// limit below the scrub rate does not stretch the turns that hold up
// uploads. A write made while a restored node scrubbed under
// --backend-ops waited minutes for its upload.
func TestScrubYieldsToDrains(t *testing.T) {
	a := openStore(t, "a")
	b := mem.New("b")
	for i := range 20 {
		putIn(t, a, tenant, fmt.Sprintf("k%02d", i))
	}
	e := newEngine(t, a, b, func(c *Config) { c.ScrubRate = 100 })
	if _, err := e.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	s, sc := &sched{e: e}, &scrubber{e: e}
	for i := range 5 { // steady writes, one waiting at every tick
		key := fmt.Sprintf("new%d", i)
		putIn(t, a, tenant, key)
		e.Changed(tenant)
		s.drainThenScrub(bg, sc)
		if _, err := b.Stat(bg, tenant, key); err != nil {
			t.Fatalf("write %d was not uploaded at the tick: %v", i, err)
		}
	}
	if sc.started.IsZero() {
		t.Fatal("the scrub took no turn under steady writes")
	}

	slow := newEngine(t, a, b, func(c *Config) { c.ScrubRate, c.Limits.OpsPerSec = 100, 10 })
	ssc := &scrubber{e: slow}
	ssc.turn(bg)
	if ssc.r == nil || ssc.r.st.Scanned != 5 {
		t.Fatalf("a scrub turn at 10 calls a second scanned %+v, want 5 objects", ssc.r)
	}
}

// TestTenantsDrainTogether: changes told for several tenants are drained
// at once, not one tenant after another: each tenant's first upload waits
// until every tenant's has begun, which drains in sequence never reach.
func TestTenantsDrainTogether(t *testing.T) {
	a := openStore(t, "a")
	b := mem.New("b")
	tenants := []string{"t1", "t2", "t3"}
	for _, tn := range tenants {
		putIn(t, a, tn, "k")
	}
	var begun sync.WaitGroup
	begun.Add(len(tenants))
	all := make(chan struct{})
	go func() { begun.Wait(); close(all) }()
	var first sync.Map
	var apart atomic.Bool
	b.SetFault(func(op, tn, key string) error {
		if op != backend.OpPut || key != "k" {
			return nil
		}
		if _, again := first.LoadOrStore(tn, true); again {
			return nil
		}
		begun.Done()
		select {
		case <-all:
		case <-time.After(10 * time.Second): // only drains run one after another wait this long
			apart.Store(true)
		}
		return nil
	})
	e := newEngine(t, a, b, nil)
	for _, tn := range tenants {
		e.Changed(tn)
	}
	(&sched{e: e}).changedAll(bg)
	if apart.Load() {
		t.Fatal("the tenants' drains ran one after another")
	}
	for _, tn := range tenants {
		if _, err := b.Get(bg, tn, "k"); err != nil {
			t.Errorf("tenant %s's document not uploaded: %v", tn, err)
		}
	}
}
