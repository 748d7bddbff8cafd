package reconcile

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/fault"
)

// fillBackend writes n documents of tenant on a node of its own and
// uploads them to b: a backend holding a tenant another node wrote.
func fillBackend(t *testing.T, b *mem.Mem, tenant string, n int) {
	t.Helper()
	origin := openStore(t, "origin")
	for i := range n {
		putIn(t, origin, tenant, fmt.Sprintf("k%02d", i))
	}
	if _, err := newEngine(t, origin, b, nil).Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
}

// TestPassRestoresTenantsTheStoreLacks: a pass reconciles the tenants the
// backend holds and the configured ones, not only those with rows in the
// store, so a node with an empty store restores them; with no tenant
// configured too.
func TestPassRestoresTenantsTheStoreLacks(t *testing.T) {
	for _, configured := range [][]string{nil, {"configured", "nothing-yet"}} {
		b := mem.New("b")
		fillBackend(t, b, "in-backend", 3)
		fillBackend(t, b, "configured", 2)
		empty := openStore(t, "empty")
		rounds := make(chan string, 4)
		e := newEngine(t, empty, b, func(c *Config) {
			c.Tenants = configured
			c.Observer = &roundObserver{onRound: func(err error) {
				if err != nil {
					t.Errorf("round: %v", err)
				}
				rounds <- ""
			}}
		})
		runEngine(t, e)
		e.Trigger()
		want := 2 // in-backend and configured, both in the backend
		if configured != nil {
			want++ // nothing-yet
		}
		for range want {
			select {
			case <-rounds:
			case <-time.After(time.Minute): // a failure, not a wait: the rounds take milliseconds
				t.Fatalf("configured %q: no round of the tenants the store lacks within a minute", configured)
			}
		}
		for tn, n := range map[string]int{"in-backend": 3, "configured": 2} {
			for i := range n {
				if _, err := empty.Get(bg, tn, fmt.Sprintf("k%02d", i)); err != nil {
					t.Errorf("configured %q: after a pass, %s/k%02d: %v", configured, tn, i, err)
				}
			}
		}
	}
}

// TestCatchingUpUntilARoundCompletes: a tenant the backend holds is
// catching up until one of its rounds completes; the round's progress
// shows it; the completed round is kept, so an engine made again on the
// same store (a restart) does not catch up again. A tenant the backend
// holds nothing of is not catching up once the backend was listed.
func TestCatchingUpUntilARoundCompletes(t *testing.T) {
	b := mem.New("b")
	fillBackend(t, b, "restore", 5)
	st := openStore(t, "empty")
	e := newEngine(t, st, b, func(c *Config) { c.Tenants = []string{"restore", "fresh"} })

	// Before the backend is listed, every configured tenant may have
	// documents there.
	if got := e.CatchingUpAtStart(); !slices.Equal(got, []string{"fresh", "restore"}) || e.catching.Load() != 2 {
		t.Fatalf("before listing the backend, catching up: %q (counted %d)", got, e.catching.Load())
	}
	ts, err := e.Discover(bg)
	if err != nil || !slices.Equal(ts, []string{"fresh", "restore"}) {
		t.Fatalf("Discover: %q, %v", ts, err)
	}
	if e.CatchingUp("fresh") || !e.CatchingUp("restore") || e.catching.Load() != 1 {
		t.Fatalf("after listing: fresh %v, restore %v (counted %d); want false, true", e.CatchingUp("fresh"), e.CatchingUp("restore"), e.catching.Load())
	}
	if p, ok := e.AllProgress()["restore"]; !ok || !p.CatchingUp {
		t.Fatalf("AllProgress()[restore] = %+v, %v; want catching up", p, ok)
	}

	// A round that stops part way does not end the catch-up.
	b.SetFault(func(op, tn, key string) error {
		if key == "k03" {
			return fault.New(fault.Transient, fault.Context{}, "injected")
		}
		return nil
	})
	if _, err := e.Round(bg, "restore"); err == nil {
		t.Fatal("round with a failing key: no error")
	}
	p, _ := e.Progress("restore")
	if !e.CatchingUp("restore") || !p.CatchingUp || p.Last.Scanned != 4 {
		t.Fatalf("after a failed round: catching up %v, progress %+v; want still catching up, 4 scanned", e.CatchingUp("restore"), p)
	}
	b.SetFault(nil)
	if _, err := e.Round(bg, "restore"); err != nil {
		t.Fatal(err)
	}
	if e.CatchingUp("restore") || len(e.CatchingUpAtStart()) != 0 || e.catching.Load() != 0 {
		t.Fatalf("after a completed round: catching up %v, at start %q (counted %d)", e.CatchingUp("restore"), e.CatchingUpAtStart(), e.catching.Load())
	}
	again := newEngine(t, st, b, func(c *Config) { c.Tenants = []string{"restore"} })
	if again.CatchingUp("restore") {
		t.Fatal("an engine made again on the same store catches up again")
	}
}

// TestTenantFoundLaterDoesNotHoldReadiness: a tenant that appears in the
// backend after the engine first listed it catches up, but is not among
// those readiness waits for; one first written on the node does not
// catch up.
func TestTenantFoundLaterDoesNotHoldReadiness(t *testing.T) {
	b := mem.New("b")
	st := openStore(t, "n")
	e := newEngine(t, st, b, nil)
	if _, err := e.Discover(bg); err != nil {
		t.Fatal(err)
	}
	// A tenant first written on this node is not catching up.
	putIn(t, st, "mine", "k")
	if _, err := e.knownTenants(bg); err != nil || e.CatchingUp("mine") {
		t.Fatalf("a tenant written here: catching up %v (%v)", e.CatchingUp("mine"), err)
	}
	fillBackend(t, b, "later", 1)
	if _, err := e.Discover(bg); err != nil {
		t.Fatal(err)
	}
	if !e.CatchingUp("later") || len(e.CatchingUpAtStart()) != 0 {
		t.Fatalf("tenant found later: catching up %v, at start %q; want true, none", e.CatchingUp("later"), e.CatchingUpAtStart())
	}
}

// TestReadThrough reads a document the store lacks from the backend,
// verified, without storing it; an absent one is NotFound.
func TestReadThrough(t *testing.T) {
	b := mem.New("b")
	fillBackend(t, b, "r", 1)
	st := openStore(t, "n")
	e := newEngine(t, st, b, nil)
	o, err := e.ReadThrough(bg, "r", "k00")
	if err != nil || string(o.Body) != `{}` {
		t.Fatalf("ReadThrough: %v, %v", o, err)
	}
	if _, err := st.Get(bg, "r", "k00"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("ReadThrough stored the document: %v", err)
	}
	if _, err := e.ReadThrough(bg, "r", "absent"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("ReadThrough of an absent key: %v, want not found", err)
	}
}

// TestCheckpointFormat1 still decodes, as not caught up.
func TestCheckpointFormat1(t *testing.T) {
	c, err := decodeCheckpoint([]byte{1, 7, 'k'})
	if err != nil || c.uploadSeq != 7 || c.cursor != "k" || c.caughtUp {
		t.Fatalf("format 1: %+v, %v", c, err)
	}
	for _, in := range []checkpoint{
		{cursor: "x", uploadSeq: 300, caughtUp: true},
		{cursor: "k9", uploadSeq: 1, packGen: "0000000000000001-00000002", packPart: 7},
		{packDone: true},
	} {
		if out, err := decodeCheckpoint(in.encode()); err != nil || out != in {
			t.Fatalf("round trip: %+v, %v; want %+v", out, err, in)
		}
	}
	// Format 2 (before packs) still decodes.
	if c, err := decodeCheckpoint([]byte{2, flagCaughtUp, 5, 'k'}); err != nil || !c.caughtUp || c.uploadSeq != 5 || c.cursor != "k" {
		t.Fatalf("format 2: %+v, %v", c, err)
	}
}
