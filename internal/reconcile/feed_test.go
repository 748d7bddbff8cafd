package reconcile

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/procout"
)

// blobFake is a backend with blobs in memory, and the feed's faults: a
// write can be lost (acknowledged, never stored) or delayed (stored but
// invisible until released).
type blobFake struct {
	backend.Backend
	mu      sync.Mutex // guards the following
	blobs   map[string][]byte
	hidden  map[string]bool
	loseN   int // the next loseN writes are lost
	delayN  int // the next delayN writes are hidden
	calls   map[string]int
	deletes []string
}

func newBlobFake(b backend.Backend) *blobFake {
	return &blobFake{Backend: b, blobs: map[string][]byte{}, hidden: map[string]bool{}, calls: map[string]int{}}
}

func (f *blobFake) Unwrap() backend.Backend { return f.Backend }

func (f *blobFake) PutBlob(_ context.Context, name string, data []byte, pre backend.Precondition) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[backend.OpPutBlob]++
	old, exists := f.blobs[name]
	if err := pre.Check(etagOf(old), exists); err != nil {
		return "", err
	}
	if f.loseN > 0 {
		f.loseN--
		return etagOf(data), nil
	}
	if f.delayN > 0 {
		f.delayN--
		f.hidden[name] = true
	}
	f.blobs[name] = bytes.Clone(data)
	return etagOf(data), nil
}

func etagOf(b []byte) string { h := doc.HashBody(b); return hex.EncodeToString(h[:8]) }

func (f *blobFake) GetBlob(_ context.Context, name string) ([]byte, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[backend.OpGetBlob]++
	b, ok := f.blobs[name]
	if !ok || f.hidden[name] {
		return nil, "", fault.New(fault.NotFound, fault.Context{Op: backend.OpGetBlob, Key: name}, "no blob")
	}
	return bytes.Clone(b), etagOf(b), nil
}

func (f *blobFake) ListBlobs(_ context.Context, prefix, after string, limit int) (backend.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[backend.OpListBlobs]++
	var names []string
	for n := range f.blobs {
		if strings.HasPrefix(n, prefix) && n > after && !f.hidden[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var p backend.Page
	if limit <= 0 {
		limit = backend.DefaultLimit
	}
	if len(names) > limit {
		names, p.More = names[:limit], true
	}
	for _, n := range names {
		p.Entries = append(p.Entries, backend.Entry{Key: n, ETag: etagOf(f.blobs[n]), Size: int64(len(f.blobs[n]))})
	}
	return p, nil
}

func (f *blobFake) DeleteBlob(_ context.Context, name string, pre backend.Precondition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[backend.OpDeleteBlob]++
	old, exists := f.blobs[name]
	if !pre.IsZero() {
		if err := pre.Check(etagOf(old), exists); err != nil {
			return err
		}
	}
	delete(f.blobs, name)
	delete(f.hidden, name)
	f.deletes = append(f.deletes, name)
	return nil
}

// release makes the delayed objects visible.
func (f *blobFake) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.hidden)
}

func (f *blobFake) names(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.blobs {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func (f *blobFake) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// countingBackend counts document listings: a node that learns of a write
// through the feed lists nothing.
type countingBackend struct {
	backend.Backend
	mu    sync.Mutex
	lists int
}

func (c *countingBackend) List(ctx context.Context, t string, o backend.ListOptions) (backend.Page, error) {
	c.mu.Lock()
	c.lists++
	c.mu.Unlock()
	return c.Backend.List(ctx, t, o)
}

func (c *countingBackend) Unwrap() backend.Backend { return c.Backend }

func (c *countingBackend) listed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lists
}

// clock is a settable clock for the feed's timing decisions.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// feedNode is one node of a feed test: its store's engine over a link to
// the shared backend, with the feed driven by hand (no Run).
func feedEngine(t testing.TB, node string, b backend.Backend, clk *clock, mod func(*Config)) *Engine {
	t.Helper()
	s := openStore(t, node)
	e := newEngine(t, s, b, func(c *Config) {
		c.Feed = FeedConfig{NodeID: node, Retention: time.Hour}
		c.Tenants = []string{tenant}
		if clk != nil {
			c.Now = clk.now
		}
		if mod != nil {
			mod(c)
		}
	})
	if e.feed == nil {
		t.Fatal("the feed is off")
	}
	e.feed.round = e.Round // no Run: the fallback round runs on the caller
	return e
}

// flush uploads the change log and writes the pending feed object.
func flush(t testing.TB, e *Engine) {
	t.Helper()
	if _, err := e.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if err := e.feed.publish(bg, tenant); err != nil {
		t.Fatal(err)
	}
}

func poll(t testing.TB, e *Engine) Stats {
	t.Helper()
	st, err := e.feed.poll(bg, tenant)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestFeedFormatRoundTrip(t *testing.T) {
	v := doc.Derive(nil, 7, 3, []byte(`{"a":1}`), false)
	tomb := doc.Derive(&v, 7, 4, nil, true)
	o := &feedObject{tenant: "t1", node: "n/ä", seq: 42, published: time.Unix(0, 12345), entries: []feedEntry{
		{key: "a", version: v, etag: "e1", inline: true, body: []byte(`{"a":1}`)},
		{key: "b/c", version: tomb, etag: "e2", inline: true},
		{key: "big", version: v, etag: "e3"},
	}}
	b := o.encode()
	got, err := decodeFeed(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.tenant != o.tenant || got.node != o.node || got.seq != 42 || !got.published.Equal(o.published) || len(got.entries) != 3 {
		t.Fatalf("decoded %+v, want %+v", got, o)
	}
	for i, en := range got.entries {
		w := o.entries[i]
		if en.key != w.key || en.version.ID() != w.version.ID() || en.etag != w.etag || en.inline != w.inline || !bytes.Equal(en.body, w.body) {
			t.Errorf("entry %d: got %+v, want %+v", i, en, w)
		}
	}
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x10
		if _, err := decodeFeed(bad); !errors.Is(err, errBadFeed) {
			t.Fatalf("byte %d flipped: err %v, want errBadFeed", i, err)
		}
	}
	if _, err := decodeFeed(b[:len(b)-1]); !errors.Is(err, errBadFeed) {
		t.Fatalf("truncated: err %v", err)
	}
}

func FuzzDecodeFeed(f *testing.F) {
	v := doc.Derive(nil, 7, 3, []byte(`{"a":1}`), false)
	f.Add((&feedObject{tenant: "t1", node: "n1", seq: 1, entries: []feedEntry{{key: "a", version: v, etag: "e", inline: true, body: []byte(`{"a":1}`)}}}).encode())
	f.Add((&feedObject{tenant: "t1", node: "n1", seq: 2}).encode())
	f.Add([]byte(feedMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := decodeFeed(data)
		if err != nil {
			if !errors.Is(err, errBadFeed) {
				t.Fatalf("error %v does not wrap errBadFeed", err)
			}
			return
		}
		again, err := decodeFeed(o.encode())
		if err != nil || len(again.entries) != len(o.entries) || again.seq != o.seq {
			t.Fatalf("re-encoding a decoded object: %v", err)
		}
	})
}

func TestFeedNames(t *testing.T) {
	n := feedName("t1", nodeHex("node-1"), 0x2a)
	if n != "feed/t1/6e6f64652d31/000000000000002a" {
		t.Fatalf("name %q", n)
	}
	if node, seq, ok := parseFeedName("t1", n); !ok || node != nodeHex("node-1") || seq != 0x2a {
		t.Fatalf("parse %q: %q %d %v", n, node, seq, ok)
	}
	for _, bad := range []string{"feed/t1/zz/000000000000002a", "feed/t1/6e/2a", "feed/t2/6e/000000000000002a",
		"feed/t1/6e/000000000000002A", "feed/t1/6e/0000000000000000", "feed/t1//000000000000002a"} {
		if _, _, ok := parseFeedName("t1", bad); ok {
			t.Errorf("parseFeedName(%q) accepted", bad)
		}
	}
	s := feedState{seq: 9, marks: []feedMark{{3, 100}, {9, -5}}, cursors: map[string]uint64{"6e": 4}}
	got, err := decodeFeedState(s.encode())
	if err != nil || got.seq != 9 || len(got.marks) != 2 || got.marks[1] != (feedMark{9, -5}) || got.cursors["6e"] != 4 {
		t.Fatalf("state round trip: %+v, %v", got, err)
	}
}

// TestFeedCarriesWrites: a write on A reaches B through A's feed object,
// with its version, body and ETag, and B records the base; B lists no
// documents to learn of it, and A's own feed is not applied back to A.
func TestFeedCarriesWrites(t *testing.T) {
	shared := newBlobFake(mem.New("b"))
	cb := &countingBackend{Backend: shared}
	a := feedEngine(t, "na", shared, nil, nil)
	b := feedEngine(t, "nb", cb, nil, nil)
	runRound(t, b) // B has caught up: a peer's feed is then read from its start
	lists := cb.listed()

	put(t, a.st, "k1", `{"v":1}`)
	put(t, a.st, "k2", `{"v":2}`)
	del(t, a.st, "k2")
	big := `{"big":"` + strings.Repeat("x", MaxInlineBody) + `"}`
	put(t, a.st, "k3", big)
	flush(t, a)
	if got := shared.names("feed/"); len(got) != 1 || got[0] != feedName(tenant, nodeHex("na"), 1) {
		t.Fatalf("feed objects %v, want one, seq 1", got)
	}
	st := poll(t, b)
	if st.Actions[Download] != 3 {
		t.Fatalf("poll stats %+v: want 3 downloads", st)
	}
	for _, k := range []string{"k1", "k2", "k3"} {
		l, _ := localState(t, b.st, k)
		r, _ := remoteState(t, shared, k)
		if l != r {
			t.Errorf("%s: B holds %+v, backend %+v", k, l, r)
		}
		base, ok, err := b.st.SyncState("b", tenant, k)
		if err != nil || !ok {
			t.Fatalf("%s: no base on B: %v", k, err)
		}
		ent, err := shared.Stat(bg, tenant, k)
		if err != nil || base.RemoteETag != ent.ETag {
			t.Errorf("%s: B's base ETag %q, backend's %q (%v)", k, base.RemoteETag, ent.ETag, err)
		}
	}
	if cb.listed() != lists {
		t.Errorf("B listed the documents %d times to learn of the writes", cb.listed()-lists)
	}
	if st := poll(t, b); st.Scanned != 0 {
		t.Errorf("a second poll read %+v", st)
	}
	// B's own upload of what it applied is in sync: no feed entry.
	if _, err := b.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if n := len(b.feed.tenants[tenant].pending); n != 0 {
		t.Errorf("B would publish %d entries of what it only applied", n)
	}
	if st, err := a.feed.poll(bg, tenant); err != nil || st.Scanned != 0 {
		t.Errorf("A read its own feed: %+v %v", st, err)
	}
	s, ok := b.FeedStatus(tenant)
	if !ok || s.Peers["na"].Cursor != 1 {
		t.Errorf("B's feed status %+v", s)
	}
}

// TestPollLeavesProgress: a feed poll's entries are not a round's, so a
// poll leaves the tenant's progress (what cairn reconcile status shows)
// as the last round left it; only a restore's replay shows its own.
func TestPollLeavesProgress(t *testing.T) {
	shared := newBlobFake(mem.New("b"))
	a := feedEngine(t, "na", shared, nil, nil)
	b := feedEngine(t, "nb", shared, nil, nil)
	runRound(t, b)
	for i := range 150 {
		put(t, a.st, fmt.Sprintf("p%03d", i), `{}`)
	}
	flush(t, a)
	before, _ := b.Progress(tenant)
	if st := poll(t, b); st.Actions[Download] != 150 {
		t.Fatalf("poll stats %+v: want 150 downloads", st)
	}
	if after, _ := b.Progress(tenant); after.Scanned != before.Scanned || after.Downloaded != before.Downloaded {
		t.Errorf("progress after a poll: scanned %d downloaded %d, want %d and %d as before it",
			after.Scanned, after.Downloaded, before.Scanned, before.Downloaded)
	}
}

// TestFeedGapFallsBack: a lost feed object is a gap in the seqs; the reader
// runs a round for the tenant, skips its cursor to what was published
// before that round, and tails again after it. A corrupt object and a
// cursor behind a trimmed feed do the same.
func TestFeedGapFallsBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(shared *blobFake, a *Engine)
	}{
		{"lost", func(shared *blobFake, a *Engine) { shared.loseN = 1 }},
		{"corrupt", func(shared *blobFake, a *Engine) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared := newBlobFake(mem.New("b"))
			a := feedEngine(t, "na", shared, nil, nil)
			b := feedEngine(t, "nb", shared, nil, nil)
			runRound(t, b)
			put(t, a.st, "k0", `{"v":0}`)
			flush(t, a)
			poll(t, b)
			tc.fault(shared, a)
			put(t, a.st, "k1", `{"v":1}`)
			flush(t, a) // seq 2: lost, or corrupted below
			if tc.name == "corrupt" {
				shared.blobs[feedName(tenant, nodeHex("na"), 2)][20] ^= 1
			}
			put(t, a.st, "k2", `{"v":2}`)
			flush(t, a) // seq 3
			rounds := 0
			b.feed.round = func(ctx context.Context, tn string) (Stats, error) {
				rounds++
				return b.Round(ctx, tn)
			}
			poll(t, b)
			if rounds != 1 {
				t.Fatalf("%d fallback rounds, want 1", rounds)
			}
			for _, k := range []string{"k1", "k2"} {
				if l, _ := localState(t, b.st, k); l.body == "" {
					t.Errorf("%s not on B after the fallback", k)
				}
			}
			if s, _ := b.FeedStatus(tenant); s.Peers["na"].Cursor != 3 || s.Fallback != "" {
				t.Fatalf("after the fallback: %+v", s)
			}
			put(t, a.st, "k3", `{"v":3}`)
			flush(t, a)
			if st := poll(t, b); st.Actions[Download] != 1 || rounds != 1 {
				t.Fatalf("tailing after the fallback: %+v, %d rounds", st, rounds)
			}
		})
	}
}

// TestFeedRetention: a node deletes its own feed objects published more
// than Retention ago, never a newer one; a reader whose cursor is older
// than the oldest retained object falls back to a round.
func TestFeedRetention(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	shared := newBlobFake(mem.New("b"))
	const ret = 64 * time.Minute // a mark a minute
	a := feedEngine(t, "na", shared, clk, func(c *Config) { c.Feed.Retention = ret })
	b := feedEngine(t, "nb", shared, clk, func(c *Config) { c.Feed.Retention = ret })
	runRound(t, b)
	put(t, a.st, "k0", `{"v":0}`)
	flush(t, a)
	poll(t, b) // B's cursor: 1
	for i := range 10 {
		clk.add(time.Minute)
		put(t, a.st, "k", `{"i":`+string(rune('0'+i))+`}`)
		flush(t, a) // seqs 2..11, a minute apart
	}
	prefix := feedPeerPrefix(tenant, nodeHex("na"))
	a.feed.trimDue(bg)
	if n := len(shared.names(prefix)); n != 11 {
		t.Fatalf("trimmed before retention: %d objects left", n)
	}
	clk.add(ret - 5*time.Minute - 30*time.Second) // objects 1..6 are older than ret
	a.feed.trimDue(bg)
	// Objects 1..5 were published more than ret ago (5 at minute 4, now
	// is minute 68.5); 6 on are younger. Trimming is conservative by at
	// most a mark (a minute here), and never early.
	got := shared.names(prefix)
	if len(got) == 0 || (got[0] != feedName(tenant, nodeHex("na"), 5) && got[0] != feedName(tenant, nodeHex("na"), 6)) {
		t.Fatalf("after trimming: %v", got)
	}
	for _, n := range shared.deletes {
		if _, seq, _ := parseFeedName(tenant, n); seq > 5 {
			t.Fatalf("deleted %s, published less than the retention ago", n)
		}
	}
	rounds := 0
	b.feed.round = func(ctx context.Context, tn string) (Stats, error) { rounds++; return b.Round(ctx, tn) }
	poll(t, b)
	if rounds != 1 {
		t.Fatalf("a cursor behind the trimmed feed: %d rounds, want 1", rounds)
	}
	if l, _ := localState(t, b.st, "k"); l.body != `{"i":9}` {
		t.Fatalf("B holds %+v after the fallback", l)
	}
}

// TestFeedSilentTenantRolled: a tenant this node stops writing (removed,
// or written elsewhere now) does not keep its last feed objects, which
// hold the bodies of its last writes, for good: once the feed has been
// silent for the retention, the node publishes an object with no entries
// and deletes the rest. Readers and the node's next write go on from the
// numbers as they were.
func TestFeedSilentTenantRolled(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	shared := newBlobFake(mem.New("b"))
	const ret = 64 * time.Minute
	a := feedEngine(t, "na", shared, clk, func(c *Config) { c.Feed.Retention = ret })
	b := feedEngine(t, "nb", shared, clk, func(c *Config) { c.Feed.Retention = ret })
	runRound(t, b)
	put(t, a.st, "k0", `{"secret":"erased-later"}`)
	del(t, a.st, "k0")
	flush(t, a)
	poll(t, b) // B's cursor: a's last object
	prefix := feedPeerPrefix(tenant, nodeHex("na"))
	before := shared.names(prefix)
	clk.add(ret)
	a.feed.trimDue(bg)
	if got := shared.names(prefix); !slices.Equal(got, before) {
		t.Fatalf("the feed's last objects trimmed before the retention and a mark had passed: %v, was %v", got, before)
	}
	clk.add(2 * time.Minute)
	a.feed.trimDue(bg)
	got := shared.names(prefix)
	if len(got) != 1 || slices.Contains(before, got[0]) {
		t.Fatalf("after a silent retention: %v (was %v), want one new object, with no entries", got, before)
	}
	data, _, err := shared.GetBlob(bg, got[0])
	if err != nil {
		t.Fatal(err)
	}
	if obj, err := decodeFeed(data); err != nil || len(obj.entries) != 0 {
		t.Fatalf("the new object: %+v, %v; want no entries", obj, err)
	}
	// Silent on: the empty object holds nothing to trim, and stays.
	clk.add(ret + 2*time.Minute)
	a.feed.trimDue(bg)
	if again := shared.names(prefix); !slices.Equal(again, got) {
		t.Fatalf("a second silent retention: %v, want %v as it was", again, got)
	}
	rounds := 0
	b.feed.round = func(ctx context.Context, tn string) (Stats, error) { rounds++; return b.Round(ctx, tn) }
	poll(t, b)
	put(t, a.st, "k1", `{"v":1}`)
	flush(t, a)
	if st := poll(t, b); st.Actions[Download] != 1 || rounds != 0 {
		t.Fatalf("reading on past the empty object: %+v, %d rounds; want k1 downloaded and no round", st, rounds)
	}

	// The next number taken already, as a publish whose PUT landed
	// before a crash leaves it (the saved state one behind): the roll
	// passes over it and the trim still goes. The taken object, of a time
	// the node never saved, goes a retention later; the roll stays.
	taken := shared.names(prefix)
	_, last, _ := parseFeedName(tenant, taken[len(taken)-1])
	obj := feedObject{tenant: tenant, node: "na", seq: last + 1, published: clk.now()}
	if _, err := shared.PutBlob(bg, feedName(tenant, nodeHex("na"), last+1), obj.encode(), backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	clk.add(ret + 2*time.Minute)
	a.feed.trimDue(bg)
	got = shared.names(prefix)
	if want := []string{feedName(tenant, nodeHex("na"), last+1), feedName(tenant, nodeHex("na"), last+2)}; !slices.Equal(got, want) {
		t.Fatalf("after a roll over a taken number: %v, want %v", got, want)
	}
	clk.add(ret + 2*time.Minute)
	a.feed.trimDue(bg)
	if got = shared.names(prefix); len(got) != 1 || got[0] != feedName(tenant, nodeHex("na"), last+2) {
		t.Fatalf("a retention later: %v, want only object %d", got, last+2)
	}
}

// TestFeedSeqContinues: the seq survives a restart (persisted), and a node
// that lost the saved seq (a crash after the write, a wiped data
// directory with the same node id) continues after the highest object in
// the backend instead of reusing a seq.
func TestFeedSeqContinues(t *testing.T) {
	shared := newBlobFake(mem.New("b"))
	a := feedEngine(t, "na", shared, nil, nil)
	for i := range 5 {
		put(t, a.st, "k", `{"i":`+string(rune('0'+i))+`}`)
		flush(t, a)
	}
	a2 := newEngine(t, a.st, shared, func(c *Config) { c.Feed = FeedConfig{NodeID: "na"} })
	put(t, a.st, "k", `{"i":5}`)
	flush(t, a2)
	wiped := feedEngine(t, "na", shared, nil, nil) // a new store: no saved seq
	put(t, wiped.st, "w", `{"w":1}`)
	flush(t, wiped)
	// A saved seq behind the backend (written, then crashed): create-only
	// refuses the taken seq, and the write goes after the highest.
	wiped.feed.tenants[tenant].state.seq = 2
	put(t, wiped.st, "w", `{"w":2}`)
	flush(t, wiped)
	var seqs []uint64
	for _, n := range shared.names(feedPeerPrefix(tenant, nodeHex("na"))) {
		_, s, _ := parseFeedName(tenant, n)
		seqs = append(seqs, s)
	}
	if want := []uint64{1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(seqs, want) {
		t.Fatalf("seqs %v, want %v", seqs, want)
	}
	o, err := decodeFeed(shared.blobs[feedName(tenant, nodeHex("na"), 1)])
	if err != nil || len(o.entries) != 1 || string(o.entries[0].body) != `{"i":0}` {
		t.Fatalf("seq 1 was overwritten: %+v %v", o, err)
	}
}

// TestFeedLastSeq: lastSeq finds the highest seq with few listings.
func TestFeedLastSeq(t *testing.T) {
	shared := newBlobFake(mem.New("b"))
	e := feedEngine(t, "na", shared, nil, nil)
	for _, tc := range []struct{ from, to uint64 }{{0, 0}, {1, 1}, {1, 2}, {3, 1000}, {500, 777}} {
		clear(shared.blobs)
		for s := tc.from; s <= tc.to && tc.to > 0; s++ {
			shared.blobs[feedName(tenant, "ab", s)] = []byte("x")
		}
		before := shared.count(backend.OpListBlobs)
		got, err := e.feed.lastSeq(bg, tenant, "ab")
		if err != nil || got != tc.to {
			t.Fatalf("lastSeq over %d..%d = %d, %v", tc.from, tc.to, got, err)
		}
		if n := shared.count(backend.OpListBlobs) - before; n > 25 {
			t.Errorf("lastSeq over %d..%d took %d listings", tc.from, tc.to, n)
		}
	}
}

// TestFeedGuard: deletions a feed carries count toward the mass-deletion
// guard as a round's do: past it, the feed stops and the tenant falls back
// to a round, which waits for a confirmation like any other.
func TestFeedGuard(t *testing.T) {
	const docs, deletes = 40, 16
	shared := newBlobFake(mem.New("b"))
	var logs procout.Buffer
	a := feedEngine(t, "na", shared, nil, nil)
	b := feedEngine(t, "nb", shared, nil, func(c *Config) {
		c.Guard = Guard{MaxShare: 0.25, Floor: 2}
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	for i := range docs {
		put(t, a.st, fmt.Sprintf("k%02d", i), `{}`)
	}
	flush(t, a)
	runRound(t, b)
	poll(t, b)
	for i := range deletes {
		del(t, a.st, fmt.Sprintf("k%02d", i))
	}
	flush(t, a)
	_, err := b.feed.poll(bg, tenant)
	if !errors.Is(err, ErrNeedsConfirm) {
		t.Fatalf("poll: %v, want ErrNeedsConfirm", err)
	}
	live := countLive(t, b.st)
	if live <= docs-deletes {
		t.Fatalf("the feed deleted past the guard: %d live documents left", live)
	}
	if !strings.Contains(logs.String(), `"msg":"reconcile: feed stopped by the mass-deletion guard"`) {
		t.Errorf("the feed's stop was not logged:\n%s", logs.String())
	}
	// Unconfirmed, the round the feed falls back to stops at its first
	// deletion: counting the share afresh after what the feed applied
	// would let the rest through.
	for range 2 {
		b.feed.tenants[tenant].gap.tried = time.Time{}
		if _, err := b.feed.poll(bg, tenant); !errors.Is(err, ErrNeedsConfirm) {
			t.Fatalf("poll after the guard stop, unconfirmed: %v, want ErrNeedsConfirm", err)
		}
		if n := countLive(t, b.st); n != live {
			t.Fatalf("an unconfirmed fallback round deleted %d more", live-n)
		}
	}
	b.Confirm(tenant)
	b.feed.tenants[tenant].gap.tried = time.Time{}
	poll(t, b)
	for i := range deletes {
		if l, _ := localState(t, b.st, fmt.Sprintf("k%02d", i)); !l.tomb {
			t.Errorf("k%02d not deleted after the confirmation", i)
		}
	}
	if s, _ := b.FeedStatus(tenant); s.Fallback != "" {
		t.Errorf("still falling back: %+v", s)
	}
}

// feedObserver signals each feed object read.
type feedObserver struct {
	actionObserver
	read     chan string // the reading node's peer, per object
	caughtUp chan string // nil, or the peers caught up with
}

func (o *feedObserver) FeedPublished(string, int) {}
func (o *feedObserver) FeedFallback(string)       {}
func (o *feedObserver) FeedCaughtUp(_, peer string) {
	if o.caughtUp != nil {
		o.caughtUp <- peer
	}
}
func (o *feedObserver) FeedRead(_, peer string, _ int, _ time.Duration) {
	o.read <- peer
}

// TestFeedRun: with Run, a write on A reaches B through the feed's own
// goroutines (the publisher's flush, the tailer's poll), without a round;
// Close stops them (TestMain checks for leaks).
func TestFeedRun(t *testing.T) {
	shared := newBlobFake(mem.New("b"))
	a := feedEngine(t, "na", shared, nil, func(c *Config) { c.Feed.Poll, c.Feed.Flush = 10*time.Millisecond, 10*time.Millisecond })
	obs := &feedObserver{actionObserver: actionObserver{actions: map[string]int{}}, read: make(chan string, 16)}
	b := feedEngine(t, "nb", shared, nil, func(c *Config) {
		c.Feed.Poll, c.Feed.Flush, c.Observer = 10*time.Millisecond, 10*time.Millisecond, obs
	})
	runRound(t, b) // caught up: no fallback round is due
	b.feed.round = b.RunRound
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	for _, e := range []*Engine{a, b} {
		go e.Run(ctx)
	}
	put(t, a.st, "k", `{"v":1}`)
	a.Changed(tenant)
	select {
	case peer := <-obs.read:
		if peer != "na" {
			t.Fatalf("read a feed object of %q", peer)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("B read no feed object in 30s")
	}
	if l, _ := localState(t, b.st, "k"); l.body != `{"v":1}` {
		t.Fatalf("B holds %+v", l)
	}
	if n := obs.count(Download.String()); n != 1 { // Run passes only when triggered: no round ran
		t.Fatalf("B downloaded %d times", n)
	}
	a.Close()
	b.Close()
}

// TestFeedLagZeroWhenCaughtUp: a peer's lag is that of its last object
// read until a poll finds nothing new; then it is 0, in the status and the
// observer, where a quiet peer kept the lag of the backlog read after a
// restart.
func TestFeedLagZeroWhenCaughtUp(t *testing.T) {
	shared := newBlobFake(mem.New("b"))
	a := feedEngine(t, "na", shared, nil, nil)
	obs := &feedObserver{actionObserver: actionObserver{actions: map[string]int{}}, read: make(chan string, 16), caughtUp: make(chan string, 16)}
	var skew atomic.Int64
	b := feedEngine(t, "nb", shared, nil, func(c *Config) {
		c.Observer = obs
		c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	put(t, a.st, "k0", `{}`)
	flush(t, a)
	runRound(t, b)
	poll(t, b) // finds the peer
	for len(obs.read) > 0 {
		<-obs.read
	}
	put(t, a.st, "k1", `{}`)
	flush(t, a)
	skew.Store(int64(20 * time.Second)) // read 20 s after its publication
	poll(t, b)
	var peer string
	select {
	case peer = <-obs.read:
	default:
		t.Fatal("the poll read no object")
	}
	s, _ := b.FeedStatus(tenant)
	if lag := s.Peers[peer].Lag; lag < 20*time.Second {
		t.Fatalf("lag %v after reading an object 20 s old, want ≥ 20s (%+v)", lag, s)
	}
	if len(obs.caughtUp) != 0 {
		t.Fatal("caught up reported by the poll that read the object")
	}
	poll(t, b)
	select {
	case got := <-obs.caughtUp:
		if got != peer {
			t.Fatalf("caught up with %q, want %q", got, peer)
		}
	default:
		t.Fatal("a poll that found nothing new reported no catching up")
	}
	if s, _ := b.FeedStatus(tenant); s.Peers[peer].Lag != 0 {
		t.Fatalf("lag %v after a poll that found nothing new, want 0", s.Peers[peer].Lag)
	}
}

// tailingPair is node b tailing node a's feed on one backend, b on clk,
// after one poll that read it.
func tailingPair(t *testing.T) (m *mem.Mem, b *Engine, clk *clock) {
	t.Helper()
	m = mem.New("b")
	clk = &clock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	a := feedEngine(t, "na", m, nil, nil)
	b = feedEngine(t, "nb", m, clk, nil)
	put(t, a.st, "k", `{}`)
	flush(t, a)
	runRound(t, b)
	poll(t, b)
	return m, b, clk
}

// TestFeedStatusShowsFailedPolls: while the backend fails the feed's reads,
// the status says so with the error and when a poll last succeeded, where
// it kept showing the peers' last lags, 0, as if tailing; a poll that
// succeeds clears the error.
func TestFeedStatusShowsFailedPolls(t *testing.T) {
	m, b, clk := tailingPair(t)
	st, ok := b.FeedStatus(tenant)
	if !ok || st.Error != nil || !st.Polled.Equal(clk.now()) {
		t.Fatalf("after a poll that read the feed: %+v, %v; want no error, polled now", st, ok)
	}
	polled := clk.now()
	clk.add(time.Minute)
	m.SetFault(func(op, _, _ string) error {
		if op == backend.OpListBlobs {
			return fault.New(fault.Transient, fault.Context{}, "injected: no answer")
		}
		return nil
	})
	if _, err := b.feed.poll(bg, tenant); err == nil {
		t.Fatal("a poll through a failing backend succeeded")
	}
	st, _ = b.FeedStatus(tenant)
	if st.Error == nil || !strings.Contains(fault.MessageOf(st.Error), "injected") || !st.Polled.Equal(polled) {
		t.Fatalf("after a failed poll: error %v, polled %v; want the error, polled %v", st.Error, st.Polled, polled)
	}
	m.SetFault(nil)
	poll(t, b)
	if st, _ = b.FeedStatus(tenant); st.Error != nil || !st.Polled.Equal(clk.now()) {
		t.Fatalf("after the backend came back: error %v, polled %v; want none, %v", st.Error, st.Polled, clk.now())
	}

	// A backend that holds the read: the status says so while it waits,
	// not only once the call times out.
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	m.SetFault(func(op, _, _ string) error {
		if op == backend.OpListBlobs {
			once.Do(func() { close(entered) })
			<-release
		}
		return nil
	})
	held := make(chan error, 1)
	go func() { _, err := b.feed.poll(bg, tenant); held <- err }()
	<-entered
	if st, _ = b.FeedStatus(tenant); st.Error != nil {
		t.Fatalf("a poll that has just begun: %v, want no error", st.Error)
	}
	clk.add(time.Minute)
	if st, _ = b.FeedStatus(tenant); st.Error == nil || !strings.Contains(st.Error.Error(), "has waited 1m0s on the backend") {
		t.Fatalf("a poll held a minute: %v, want it said", st.Error)
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if st, _ = b.FeedStatus(tenant); st.Error != nil {
		t.Fatalf("once the held poll ended: %v, want no error", st.Error)
	}
}

// TestFeedStatusDuringFallbackRound: a poll waiting for a fallback round is
// not reported as a read waiting on the backend: the round's time is not
// the backend's, and the status says why it waits (Fallback).
func TestFeedStatusDuringFallbackRound(t *testing.T) {
	_, b, clk := tailingPair(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.feed.round = func(ctx context.Context, tenant string) (Stats, error) {
		once.Do(func() { close(entered) })
		<-release
		return Stats{}, nil
	}
	b.feed.mu.Lock()
	b.feed.tenants[tenant].gap = &feedGap{probed: clk.now().Add(time.Second), hi: map[string]uint64{}, reason: "a gap"}
	b.feed.mu.Unlock()
	done := make(chan struct{})
	go func() { b.feed.poll(bg, tenant); close(done) }()
	<-entered
	clk.add(time.Minute)
	st, _ := b.FeedStatus(tenant)
	close(release)
	<-done
	if st.Error != nil || st.Fallback != "a gap" {
		t.Fatalf("while a fallback round runs: error %v, fallback %q; want no error, the gap", st.Error, st.Fallback)
	}
}
