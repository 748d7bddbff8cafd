package reconcile

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
)

// An in-sync round takes every base from the listing: no point lookups.
// A round that applies something (which writes a base) looks up the keys
// after it until the listing is read again.
func TestRoundReadsBasesFromListing(t *testing.T) {
	b := mem.New("b")
	s := openStore(t, "a")
	var lookups atomic.Int32
	e := newEngine(t, s, b, func(c *Config) {
		c.PageSize = 7 // several base pages, not aligned with anything
		c.onBaseLookup = func(_, _ string) { lookups.Add(1) }
	})
	for i := range 50 {
		put(t, s, fmt.Sprintf("k%02d", i), `{"v":1}`)
	}
	runRound(t, e)
	if st := runRound(t, e); st.Applied() != 0 || st.Scanned != 50 {
		t.Fatalf("second round: %+v, want 50 keys in sync", st)
	}
	lookups.Store(0)
	if st := runRound(t, e); st.Actions[InSync] != 50 {
		t.Fatalf("third round: %+v, want 50 keys in sync", st)
	}
	if n := lookups.Load(); n != 0 {
		t.Fatalf("an in-sync round looked up %d bases, want 0 (all from the listing)", n)
	}

	// One changed key: its upload writes its base, so the key after it is
	// looked up (the page is stale as far as the round can tell), and the
	// rest come from listings read afterwards.
	put(t, s, "k16", `{"v":2}`)
	lookups.Store(0)
	if st := runRound(t, e); st.Actions[Upload] != 1 || st.Actions[InSync] != 49 {
		t.Fatalf("round after one write: %+v", st)
	}
	if n := lookups.Load(); n != 1 {
		t.Fatalf("round after one write looked up %d bases, want 1 (k17)", n)
	}
}

// A base written between the round's listing of it and the handling of
// its key (here by the uploader, running while the round handles the key
// before) must not be used: the round looks it up and decides on the
// current base. With the listed, stale base the round would take the
// remote object for the old version (its listed ETag matches the stale
// base's) and decide in sync; with the current one the ETag is unknown, so
// it reads the object and sees the new version.
func TestRoundDoesNotUseBaseChangedAfterListing(t *testing.T) {
	b := mem.New("b")
	s := openStore(t, "a")
	var (
		armed   atomic.Bool
		upload  atomic.Bool // the hook's upload is running (its lookups are not the round's)
		hooked  atomic.Int32
		lookups atomic.Int32
		v2      doc.ID
		seen    *doc.Version
		e       *Engine
	)
	e = newEngine(t, s, b, func(c *Config) {
		c.PageSize = 2 // "x" and "y" in one page of each listing
		c.onBaseLookup = func(_, key string) {
			if armed.Load() && !upload.Load() && key == "y" {
				lookups.Add(1)
			}
		}
		c.beforeApply = func(_, key string, d Decision) {
			if !armed.Load() {
				return
			}
			switch key {
			case "x":
				if hooked.Add(1) != 1 {
					return
				}
				// The round has listed y's base; change it under the round.
				rec := put(t, s, "y", `{"v":2}`)
				v2 = rec.Version.ID()
				upload.Store(true)
				if st, err := e.Upload(bg, tenant); err != nil || st.Actions[Upload] != 1 {
					t.Errorf("upload of y during the round: %+v, %v", st, err)
				}
				upload.Store(false)
			case "y":
				if d.Remote != nil {
					v := *d.Remote
					seen = &v
				}
			}
		}
	})
	put(t, s, "x", `{"v":1}`)
	put(t, s, "y", `{"v":1}`)
	converge(t, 3, e)
	if _, err := e.Upload(bg, tenant); err != nil { // drain the log: the hook's upload is y's alone
		t.Fatal(err)
	}

	armed.Store(true)
	runRound(t, e)
	if hooked.Load() != 1 {
		t.Fatalf("hook on x ran %d times, want 1", hooked.Load())
	}
	if lookups.Load() != 1 {
		t.Fatalf("y's base looked up %d times, want 1: the listed base was stale", lookups.Load())
	}
	if seen == nil || seen.ID() != v2 {
		t.Fatalf("the round decided y on remote version %v, want %v (what the backend holds): it used the stale base", seen, v2)
	}
	armed.Store(false)
	converge(t, 3, e)
	if l, _ := localState(t, s, "y"); l.id != v2 {
		t.Fatalf("y = %+v after convergence, want %v", l, v2)
	}
	if r, _ := remoteState(t, b, "y"); r.id != v2 {
		t.Fatalf("remote y = %+v after convergence, want %v", r, v2)
	}
}
