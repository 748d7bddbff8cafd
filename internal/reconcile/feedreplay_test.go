package reconcile

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/pack"
)

// replayScenario: node na holds n documents in sync with the backend,
// laid out for digests, and writes a pack whose manifest claims its feed
// up to its last object (4); then it rewrites, deletes and adds a key
// (feed object 5, or 5 and 6 with split), and node nc, which no pack knows of, writes one key
// of its own and publishes it to its feed but not to its digest delta.
// It returns the shared backend (counting listings), na and the manifest.
func replayScenario(t *testing.T, n int, split bool) (*countingBackend, *Engine, *pack.Manifest) {
	t.Helper()
	shared := &countingBackend{Backend: mem.New("b")}
	digests := func(c *Config) { c.Digests, c.Packs.PartSize = true, 16<<10 }
	a := feedEngine(t, "na", shared, nil, digests)
	fill(t, a.st, n)
	flushAll(t, a)
	if st := runRound(t, a); st.Listed != n {
		t.Fatalf("na's first round listed %d, want %d (it lays the tenant out)", st.Listed, n)
	}
	m, err := a.WritePack(bg, tenant, true)
	if err != nil {
		t.Fatal(err)
	}
	packed := uint64((n + DefaultFeedEntries - 1) / DefaultFeedEntries) // na's objects so far
	if want := map[string]uint64{nodeHex("na"): packed}; len(m.Feed) != 1 || m.Feed[nodeHex("na")] != packed {
		t.Fatalf("manifest feed cursors %v, want %v", m.Feed, want)
	}
	put(t, a.st, digestKey(7), `{"after":"pack"}`)
	del(t, a.st, digestKey(10))
	if split {
		flushAll(t, a) // an object of its own, trimmed by the gap test
	}
	put(t, a.st, digestKey(n+100), `{"new":true}`)
	flushAll(t, a)
	if err := a.PublishDigests(bg); err != nil {
		t.Fatal(err)
	}
	c := feedEngine(t, "nc", shared, nil, digests)
	put(t, c.st, digestKey(n+200), `{"by":"nc"}`)
	flushAll(t, c) // no round of nc: its delta waits for a layout, only its feed tells
	return shared, a, m
}

// flushAll uploads e's change log and publishes every pending entry.
func flushAll(t *testing.T, e *Engine) {
	t.Helper()
	flush(t, e)
	for {
		if s, _ := e.FeedStatus(tenant); s.Pending == 0 {
			return
		}
		if err := e.feed.publish(bg, tenant); err != nil {
			t.Fatal(err)
		}
	}
}

// restoredNode starts an empty node nb on b and restores the tenant, as
// Run would: the feed is primed before the restore.
func restoredNode(t *testing.T, b *countingBackend) (*Engine, RestoreStats) {
	t.Helper()
	e := feedEngine(t, "nb", b, nil, func(c *Config) { c.Digests = true })
	if _, err := e.Discover(bg); err != nil {
		t.Fatal(err)
	}
	e.feed.prime(bg)
	rs, err := e.Restore(bg, tenant)
	if err != nil {
		t.Fatal(err)
	}
	return e, rs
}

// sameAs checks that e holds every key of the scenario as origin does,
// and nc's key.
func sameAs(t *testing.T, e, origin *Engine, n int) {
	t.Helper()
	for i := range n + 101 {
		k := digestKey(i)
		got, gok := localState(t, e.st, k)
		want, wok := localState(t, origin.st, k)
		if gok != wok || got != want {
			t.Fatalf("%s: restored node holds %+v %v, origin %+v %v", k, got, gok, want, wok)
		}
	}
	if got, _ := localState(t, e.st, digestKey(n+200)); got.body != `{"by":"nc"}` {
		t.Fatalf("nc's key: %+v, want its write", got)
	}
}

// TestRestoreReplaysFeed: a node restored from a pack replays the feeds
// after the manifest's cursors (na's from its claimed seq, nc's, which no
// pack names, from its first object) and ends catching up with a digest
// round that lists only the segment whose digest differs, not the tenant;
// it then holds what the origin holds, and a further round lists nothing.
func TestRestoreReplaysFeed(t *testing.T) {
	const n = 3500 // four segments
	shared, a, m := replayScenario(t, n, false)
	b, rs := restoredNode(t, shared)
	if !rs.Replayed || rs.Generation != m.Generation || rs.Applied != n {
		t.Fatalf("Restore = %+v, want %d entries of %s and the feeds replayed", rs, n, m.Generation)
	}
	if s, _ := b.FeedStatus(tenant); s.Peers["na"].Cursor != 5 || s.Peers["nc"].Cursor != 1 || s.Fallback != "" {
		t.Fatalf("feed after the replay: %+v, want na at 2, nc at 1, no fallback", s)
	}
	if !b.CatchingUp(tenant) {
		t.Fatal("caught up before its round")
	}
	// What the restore wrote is the catch-up's progress, as its round's
	// downloads are (cairn reconcile status: "N downloaded").
	if p, _ := b.Progress(tenant); !p.CatchingUp || p.Downloaded < n {
		t.Fatalf("progress after the restore: %+v, want catching up with at least %d downloaded", p, n)
	}
	lists := shared.listed()
	st := runRound(t, b)
	// nc published no delta: the segment of its key differs, and only it
	// is listed.
	if st.Listed >= n/2 || st.Skipped < 3 || st.Applied() != 0 {
		t.Fatalf("catch-up round after the replay: %+v, want one segment listed and nothing applied", st)
	}
	if b.CatchingUp(tenant) {
		t.Fatal("still catching up after its round")
	}
	if p, _ := b.Progress(tenant); p.Downloaded != 0 {
		t.Fatalf("progress once caught up: %+v, want the restore's count gone", p)
	}
	if got := shared.listed() - lists; got > 2 {
		t.Fatalf("catch-up round made %d listings, want at most 2 (one segment)", got)
	}
	sameAs(t, b, a, n)
	if st := runRound(t, b); st.Listed > 1000 || st.Applied() != 0 {
		t.Fatalf("a further round: %+v", st)
	}
}

// TestRestoreFeedGapFallsBack: when the feed after the pack no longer
// reaches back to the manifest's cursor (na's object 5 trimmed), the
// restored node lists every object in its catch-up round, as without the
// replay, and ends up with everything.
func TestRestoreFeedGapFallsBack(t *testing.T) {
	const n = 3500
	shared, a, _ := replayScenario(t, n, true)
	if err := shared.Backend.(*mem.Mem).DeleteBlob(bg, feedName(tenant, nodeHex("na"), 5), backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	b, rs := restoredNode(t, shared)
	if rs.Replayed || rs.Applied != n {
		t.Fatalf("Restore = %+v, want %d entries and the replay refused (gap)", rs, n)
	}
	st := runRound(t, b)
	if st.Listed < n || st.Skipped != 0 {
		t.Fatalf("catch-up round after a gap: %+v, want every object listed", st)
	}
	if b.CatchingUp(tenant) {
		t.Fatal("still catching up after its round")
	}
	sameAs(t, b, a, n)
	poll(t, b) // the round covered the gap: the cursors move to the probed seqs
	if s, _ := b.FeedStatus(tenant); s.Fallback != "" || s.Peers["na"].Cursor != 6 || s.Peers["nc"].Cursor != 1 {
		t.Fatalf("feed after the catch-up round: %+v, want na at 6, nc at 1, no fallback pending", s)
	}
}

// TestRestoreReplayAfterKill: a node that stops after applying the pack's
// parts and before its replay finished (the checkpoint still names the
// generation) replays on its next start, and still ends with a digest
// round.
func TestRestoreReplayAfterKill(t *testing.T) {
	const n = 3500
	shared, a, m := replayScenario(t, n, false)
	e := feedEngine(t, "nb", shared, nil, func(c *Config) { c.Digests = true })
	if _, err := e.Discover(bg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	e.cfg.Failpoint = func(name string) {
		if name == "reconcile.restore.part" {
			cp, _ := e.loadCheckpoint(tenant)
			if cp.packPart == len(m.Parts) { // the last part: stop before the replay
				cancel()
			}
		}
	}
	if _, err := e.Restore(ctx, tenant); err == nil {
		t.Fatal("Restore went on after its context ended")
	}
	cp, err := e.loadCheckpoint(tenant)
	if err != nil || cp.packDone || cp.packGen == "" {
		t.Fatalf("checkpoint after the stop: %+v, %v; want the generation still named", cp, err)
	}
	e.cfg.Failpoint = nil
	rs, err := e.Restore(bg, tenant)
	if err != nil || !rs.Replayed || rs.Applied != 0 {
		t.Fatalf("resumed Restore = %+v, %v; want nothing applied and the feeds replayed", rs, err)
	}
	if st := runRound(t, e); st.Listed >= n/2 {
		t.Fatalf("catch-up round: %+v, want a digest round", st)
	}
	sameAs(t, e, a, n)
}

// TestInFlightSettle: Settle waits for the keys of its tenant held when
// it was called, not for other tenants' nor for keys taken later.
func TestInFlightSettle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewInFlight()
		rel, _ := f.Acquire(bg, "t", "k")
		other, _ := f.Acquire(bg, "u", "k")
		defer other()
		done := make(chan struct{})
		go func() {
			if err := f.Settle(bg, "t"); err != nil {
				t.Error(err)
			}
			close(done)
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("Settle returned while a key of its tenant was held")
		default:
		}
		later, _ := f.Acquire(bg, "t", "k2")
		defer later()
		rel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("Settle still waiting after the key it saw was released")
		}
	})
}

// TestReplayOwnFeedNotAPeer: a node rebuilt under its id replays its own
// feed after the pack (what it wrote since), but does not report it as a
// peer's in the feed metrics, where it showed its own id as a peer.
func TestReplayOwnFeedNotAPeer(t *testing.T) {
	const n = 3500
	shared, _, _ := replayScenario(t, n, false)
	obs := &feedObserver{actionObserver: actionObserver{actions: map[string]int{}}, read: make(chan string, 64)}
	e := feedEngine(t, "na", shared, nil, func(c *Config) { c.Digests, c.Observer = true, obs })
	if _, err := e.Discover(bg); err != nil {
		t.Fatal(err)
	}
	e.feed.prime(bg)
	if rs, err := e.Restore(bg, tenant); err != nil || !rs.Replayed {
		t.Fatalf("Restore = %+v, %v", rs, err)
	}
	close(obs.read)
	var peers []string
	for p := range obs.read {
		peers = append(peers, p)
	}
	if slices.Contains(peers, "na") || !slices.Contains(peers, "nc") {
		t.Fatalf("feed objects read, by peer: %q; want nc's and none of na's own", peers)
	}
}

// putCounting counts the object puts made through it.
type putCounting struct {
	backend.Backend
	puts int
}

func (p *putCounting) Put(ctx context.Context, tenant, key string, v doc.Version, body []byte, pre backend.Precondition) (string, error) {
	p.puts++
	return p.Backend.Put(ctx, tenant, key, v, body, pre)
}

func (p *putCounting) Unwrap() backend.Backend { return p.Backend }

// TestStaleFeedEntrySkipped: a feed entry announcing a version the key's
// base already holds, or an older one (a restored node replays the old
// entries of keys its pack brought up to date), changes nothing and puts
// nothing: deciding on it took the entry for the object the backend holds
// and made a conditional put the backend refused, one per old entry.
func TestStaleFeedEntrySkipped(t *testing.T) {
	b := &putCounting{Backend: mem.New("b")}
	e := feedEngine(t, "na", b, nil, nil)
	v1 := put(t, e.st, "hot", `{"n":1}`)
	flush(t, e)
	old, err := b.Stat(bg, tenant, "hot")
	if err != nil {
		t.Fatal(err)
	}
	put(t, e.st, "hot", `{"n":2}`)
	flush(t, e)
	puts := b.puts
	var st Stats
	for _, en := range []feedEntry{
		{key: "hot", version: v1.Version, etag: old.ETag, inline: true, body: []byte(`{"n":1}`)},
		{key: "hot", version: v1.Version, etag: old.ETag},
	} {
		if err := e.feed.applyEntry(bg, tenant, &en, &st, nil); err != nil {
			t.Fatal(err)
		}
	}
	if b.puts != puts || st.Raced != 0 || st.Applied() != 0 {
		t.Fatalf("stale entries: %d puts, %+v; want none and nothing applied", b.puts-puts, st)
	}
	if got, _ := localState(t, e.st, "hot"); got.body != `{"n":2}` {
		t.Fatalf("hot is %+v after stale entries, want the newer write", got)
	}
}

// TestRestoreShownRunning: a restore is shown running while it runs, and
// idle once it is done.
func TestRestoreShownRunning(t *testing.T) {
	shared, _, _ := replayScenario(t, 1200, false)
	e := feedEngine(t, "nb", shared, nil, func(c *Config) { c.Digests = true })
	if _, err := e.Discover(bg); err != nil {
		t.Fatal(err)
	}
	var during []bool
	e.cfg.Failpoint = func(name string) {
		if name == "reconcile.restore.part" {
			p, _ := e.Progress(tenant)
			during = append(during, p.Running)
		}
	}
	if _, err := e.Restore(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if len(during) == 0 || slices.Contains(during, false) {
		t.Errorf("running at each part: %v, want true throughout", during)
	}
	if p, _ := e.Progress(tenant); p.Running {
		t.Error("shown running after the restore")
	}
}
