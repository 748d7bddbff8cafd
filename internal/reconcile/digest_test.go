package reconcile

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/fs"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/backend/s3"
	"github.com/cairnstore/cairn/internal/backend/s3/s3test"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
)

func TestDigestBlobFormats(t *testing.T) {
	lay := &layout{gen: 7, bounds: []string{"a", "k\x00z", "zz"}}
	got, err := decodeLayout(encodeLayout(lay))
	if err != nil || got.gen != lay.gen || !slices.Equal(got.bounds, lay.bounds) {
		t.Fatalf("layout round trip: %+v, %v; want %+v", got, err, lay)
	}
	segs := []uint64{1, 0, 1 << 63, 42}
	gen, back, err := decodeDelta(encodeDelta(9, segs))
	if err != nil || gen != 9 || !slices.Equal(back, segs) {
		t.Fatalf("delta round trip: %d %v, %v", gen, back, err)
	}
	for name, raw := range map[string][]byte{"layout": encodeLayout(lay), "delta": encodeDelta(9, segs)} {
		for i := range raw {
			bad := slices.Clone(raw)
			bad[i] ^= 0x10
			var err error
			if name == "layout" {
				_, err = decodeLayout(bad)
			} else {
				_, _, err = decodeDelta(bad)
			}
			if !errors.Is(err, errDigestFormat) {
				t.Fatalf("%s with byte %d flipped: %v, want errDigestFormat", name, i, err)
			}
		}
		if name == "layout" {
			_, err = decodeLayout(raw[:len(raw)-1])
		} else {
			_, _, err = decodeDelta(raw[:len(raw)-1])
		}
		if !errors.Is(err, errDigestFormat) {
			t.Fatalf("%s truncated: %v", name, err)
		}
	}
}

func TestLayoutSegments(t *testing.T) {
	lay := &layout{bounds: []string{"d", "m"}}
	for key, want := range map[string]int{"a": 0, "d": 0, "d\x00": 1, "m": 1, "n": 2} {
		if got := lay.segment(key); got != want {
			t.Errorf("segment(%q) = %d, want %d", key, got, want)
		}
	}
	if after, last, open := lay.span(1); after != "d" || last != "m" || open {
		t.Errorf("span(1) = %q %q %v", after, last, open)
	}
	if after, _, open := lay.span(2); after != "m" || !open {
		t.Errorf("span(2) = %q %v", after, open)
	}
}

func FuzzDigestBlobs(f *testing.F) {
	f.Add(encodeLayout(&layout{gen: 1, bounds: []string{"a", "b"}}))
	f.Add(encodeDelta(1, []uint64{1, 2, 3}))
	f.Add([]byte("CDGL\x01"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if lay, err := decodeLayout(raw); err == nil {
			again, err := decodeLayout(encodeLayout(lay))
			if err != nil || again.gen != lay.gen || !slices.Equal(again.bounds, lay.bounds) {
				t.Fatalf("layout does not round-trip: %+v %v", again, err)
			}
			if !slices.IsSorted(lay.bounds) {
				t.Fatalf("unsorted bounds accepted: %q", lay.bounds)
			}
		}
		if gen, segs, err := decodeDelta(raw); err == nil {
			g2, s2, err := decodeDelta(encodeDelta(gen, segs))
			if err != nil || g2 != gen || !slices.Equal(s2, segs) {
				t.Fatalf("delta does not round-trip")
			}
		}
	})
}

// digestKey is the i-th key of a digest test's tenant.
func digestKey(i int) string { return fmt.Sprintf("doc-%05d", i) }

// fill writes n documents to s in batches.
func fill(t testing.TB, s *store.Store, n int) {
	t.Helper()
	var items []store.Item
	for i := range n {
		items = append(items, store.Item{Key: digestKey(i), Body: fmt.Appendf(nil, `{"n":%d}`, i)})
		if len(items) == 500 || i == n-1 {
			if _, err := s.PutBatch(bg, tenant, items); err != nil {
				t.Fatal(err)
			}
			items = items[:0]
		}
	}
}

// countLists counts a backend's List calls (mem's fault hook sees every
// call).
func countLists(b *mem.Mem) *atomic.Int64 {
	var n atomic.Int64
	b.SetFault(func(op, _, _ string) error {
		if op == backend.OpList {
			n.Add(1)
		}
		return nil
	})
	return &n
}

func digestEngine(t testing.TB, s *store.Store, b backend.Backend) *Engine {
	return newEngine(t, s, b, func(c *Config) { c.Digests = true })
}

// TestDigestRoundsMem: the digest scenario on mem, where the list calls
// are counted too.
func TestDigestRoundsMem(t *testing.T) {
	b := mem.New("b")
	lists := countLists(b)
	digestScenario(t, b, lists)
}

func TestDigestRoundsFS(t *testing.T) {
	b, err := fs.Open("b", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	digestScenario(t, b, nil)
}

// digestScenario runs two nodes over one backend with digests on: an
// in-sync round lists nothing; a peer's write is found by listing its one
// segment; a write whose delta was never published (the writer stopped
// first) is corrected by the writer's next round and then found by the
// peer; a damaged and a missing object, which no digest can see, are found
// and repaired by the scrub, after which rounds list nothing again.
func digestScenario(t *testing.T, b backend.Backend, lists *atomic.Int64) {
	const n = 2500 // three segments
	a, c := openStore(t, "a"), openStore(t, "c")
	ea, ec := digestEngine(t, a, b), digestEngine(t, c, b)
	fill(t, a, n)
	if _, err := ea.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if st := runRound(t, ea); st.Listed != n { // no layout yet: a full round, which lays the tenant out
		t.Fatalf("first round listed %d, want %d", st.Listed, n)
	}
	if st := runRound(t, ec); st.Actions[Download] != n { // catching up: a full round
		t.Fatalf("catch-up %+v, want %d downloads", st, n)
	}
	inSync := func(e *Engine, what string) {
		t.Helper()
		var before int64
		if lists != nil {
			before = lists.Load()
		}
		st := runRound(t, e)
		if st.Listed != 0 || st.Scanned != 0 || st.Skipped != 3 || st.Applied() != 0 {
			t.Fatalf("%s: %+v, want nothing listed and 3 segments skipped", what, st)
		}
		if lists != nil && lists.Load() != before {
			t.Fatalf("%s: %d list calls, want none", what, lists.Load()-before)
		}
	}
	inSync(ea, "in-sync round, a")
	inSync(ec, "in-sync round, c")

	// A peer's write: c uploads and publishes; a lists only its segment.
	put(t, c, digestKey(1500), `{"by":"c"}`)
	if _, err := ec.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if err := ec.PublishDigests(bg); err != nil {
		t.Fatal(err)
	}
	st := runRound(t, ea)
	if st.Actions[Download] != 1 || st.Skipped != 2 || st.Listed > 1000 {
		t.Fatalf("after c's write: %+v, want 1 download from one segment", st)
	}
	if got, _ := localState(t, a, digestKey(1500)); got.body != `{"by":"c"}` {
		t.Fatalf("a holds %q", got.body)
	}
	inSync(ea, "a after the download")
	inSync(ec, "c after its write")

	// A lost delta: c uploads and stops before publishing. Its next
	// engine (a restart) finds its local digest differing and corrects the
	// backend's; then a finds the write.
	put(t, c, digestKey(200), `{"by":"c, unpublished"}`)
	if _, err := ec.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	ec.Close()
	ec2 := digestEngine(t, c, b)
	if st := runRound(t, ec2); st.Listed == 0 || st.Applied() != 0 {
		t.Fatalf("restarted writer's round: %+v, want its segment listed, nothing applied", st)
	}
	st = runRound(t, ea)
	if st.Actions[Download] != 1 {
		t.Fatalf("after the correction: %+v, want the write downloaded", st)
	}
	inSync(ec2, "c after the correction")

	// Damage one object and remove another behind the nodes' backs.
	damaged, missing := digestKey(10), digestKey(2400)
	cor, ok := b.(backend.Corrupter)
	if !ok {
		t.Fatal("the backend cannot corrupt")
	}
	if err := cor.Corrupt(bg, tenant, damaged, func(raw []byte) []byte { raw[len(raw)-2] ^= 1; return raw }); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(bg, tenant, missing, backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	sc, err := ea.Scrub(bg, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Corrupt != 1 || sc.Repaired != 1 || sc.Quarantined != 1 || sc.Actions[Upload] != 1 || sc.Listed != n-1 {
		t.Fatalf("scrub: %+v, want the damaged object repaired, the missing one uploaded, %d listed", sc, n-1)
	}
	for _, k := range []string{damaged, missing} {
		l, _ := localState(t, a, k)
		if r, ok := remoteState(t, b, k); !ok || r != l {
			t.Fatalf("%s on the backend after the scrub: %+v %v, want %+v", k, r, ok, l)
		}
	}
	// The repairs' deltas XORed out the damaged and absent entries, not the
	// ones the digest held: the next round lists those segments and
	// corrects them, and the one after lists nothing.
	runRound(t, ea)
	inSync(ea, "a after the scrub")
	// The repairs wrote back the very bytes c last synced (the same
	// version, so the same ETag): c has nothing to do.
	inSync(ec2, "c after the repairs")
}

// TestDigestRelayout: a tenant that grows past relayoutFactor segments'
// worth of keys in one segment is laid out again, and rounds after it
// list nothing. The writes before the tenant's first round, made before
// any layout was known, reach the digest too.
func TestDigestRelayout(t *testing.T) {
	b := mem.New("b")
	a := openStore(t, "a")
	ea := digestEngine(t, a, b)
	fill(t, a, 10)
	runRound(t, ea) // lays out 10 keys: one segment
	n := relayoutFactor*segmentKeys + 500
	fill(t, a, n)
	if _, err := ea.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if err := ea.PublishDigests(bg); err != nil {
		t.Fatal(err)
	}
	// The bases show a segment past relayoutFactor × segmentKeys: the
	// round lists everything and lays the tenant out again.
	if st := runRound(t, ea); st.Listed != n {
		t.Fatalf("relayout round: %+v, want a full listing", st)
	}
	st := runRound(t, ea)
	if st.Listed != 0 || st.Skipped != n/segmentKeys+1 {
		t.Fatalf("after the relayout: %+v, want nothing listed, %d segments skipped", st, n/segmentKeys+1)
	}
}

// TestDigestRoundsS3: the digest scenario on a real S3 server (versitygw).
func TestDigestRoundsS3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts versitygw")
	}
	g := s3test.Start(t, "digest")
	b, err := s3.New("s3", s3.Config{Bucket: "digest", Endpoint: g.Endpoint, Insecure: true, Creds: s3test.Creds()})
	if err != nil {
		t.Fatal(err)
	}
	digestScenario(t, b, nil)
}

// scrubObserver signals each quarantined object and counts scrubbed ones.
type scrubObserver struct {
	roundObserver
	quarantined chan struct{}
	scrubbed    chan int
	failed      chan struct{}
	failing     chan int // if set, every report of the failing tenants
}

func (o *scrubObserver) ReconcileQuarantined(string) { o.quarantined <- struct{}{} }
func (o *scrubObserver) ScrubObjects(_ string, n int) {
	select {
	case o.scrubbed <- n:
	default:
	}
}
func (o *scrubObserver) ScrubCycle(string, time.Duration) {}
func (o *scrubObserver) ScrubFailed(string) {
	select {
	case o.failed <- struct{}{}:
	default:
	}
}
func (o *scrubObserver) ScrubFailing(_ string, n int) {
	select {
	case o.failing <- n: // nil: never
	default:
	}
}

// TestScrubFailureCounted: a scrub's walk of a tenant that ends in an
// error (a listing the backend answers with damage) is counted, and the
// tenant counts as failing until a walk of it succeeds, so that an
// operator's alert sees a tenant whose objects go unverified however long
// the scrub's cycle; the log line alone is easy to miss.
func TestScrubFailureCounted(t *testing.T) {
	b := mem.New("b")
	a := openStore(t, "a")
	obs := &scrubObserver{roundObserver: roundObserver{onRound: func(error) {}}, failed: make(chan struct{}, 1), failing: make(chan int, 100)}
	ea := newEngine(t, a, b, func(c *Config) { c.ScrubRate, c.Observer = 1000, obs })
	fill(t, a, 20)
	if _, err := ea.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	b.SetFault(func(op, _, _ string) error {
		if op == backend.OpList {
			return fault.New(fault.Corruption, fault.Context{}, "a leaf holds something no key maps to")
		}
		return nil
	})
	runEngine(t, ea)
	select {
	case <-obs.failed:
	case <-time.After(time.Minute):
		t.Fatal("the scrub's failed walk was not counted")
	}
	failing := func(want int) {
		t.Helper()
		deadline := time.After(time.Minute)
		for {
			select {
			case n := <-obs.failing:
				if n == want {
					return
				}
			case <-deadline:
				t.Fatalf("the failing tenants never reported as %d", want)
			}
		}
	}
	failing(1)
	b.SetFault(nil)
	failing(0)
}

// TestScrubInRun: Run's background scrub finds an object damaged behind
// the node's back, which digest rounds skip, and repairs it.
func TestScrubInRun(t *testing.T) {
	b := mem.New("b")
	a := openStore(t, "a")
	obs := &scrubObserver{roundObserver: roundObserver{onRound: func(error) {}}, quarantined: make(chan struct{}, 1), scrubbed: make(chan int, 1)}
	ea := newEngine(t, a, b, func(c *Config) { c.Digests, c.ScrubRate, c.Observer = true, 1000, obs })
	fill(t, a, 50)
	if _, err := ea.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	runRound(t, ea) // lays out
	if err := b.Corrupt(bg, tenant, digestKey(7), func(raw []byte) []byte { raw[len(raw)-2] ^= 1; return raw }); err != nil {
		t.Fatal(err)
	}
	if st := runRound(t, ea); st.Listed != 0 {
		t.Fatalf("digest round: %+v, want nothing listed", st)
	}
	runEngine(t, ea)
	select {
	case <-obs.quarantined:
	case <-time.After(time.Minute):
		t.Fatal("the scrub did not find the damaged object")
	}
	select {
	case n := <-obs.scrubbed:
		if n <= 0 {
			t.Fatalf("scrubbed %d objects", n)
		}
	case <-time.After(time.Minute):
		t.Fatal("no objects counted as scrubbed")
	}
}

// TestScrubDoesNotStallThePass: over a backend so slow that every scrub
// turn outlasts the scrub's tick, the scrub is always due; a pass started
// meanwhile still finishes its round.
func TestScrubDoesNotStallThePass(t *testing.T) {
	b := mem.New("b")
	a := openStore(t, "a")
	const keys = 200
	fill(t, a, keys)
	rounds := make(chan error, 1)
	obs := &scrubObserver{roundObserver: roundObserver{onRound: func(err error) {
		select {
		case rounds <- err:
		default:
		}
	}}, quarantined: make(chan struct{}, 1), scrubbed: make(chan int, 1)}
	ea := newEngine(t, a, b, func(c *Config) {
		c.ScrubRate, c.Observer = 1000, obs
		c.CheckpointEvery, c.PageSize = 10, 10
	})
	if _, err := ea.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	const tick, slow = 5 * time.Millisecond, 15 * time.Millisecond
	ea.scrubTick = tick
	b.SetFault(func(string, string, string) error {
		time.Sleep(slow) // a slow link, not synchronisation: every backend call outlasts the tick
		return nil
	})
	runEngine(t, ea)
	select {
	case <-obs.scrubbed: // the scrub is walking, and due again at once
	case <-time.After(time.Minute):
		t.Fatal("the scrub did not start")
	}
	ea.Trigger()
	select {
	case err := <-rounds:
		if err != nil {
			t.Fatalf("round: %v", err)
		}
	case <-time.After(30 * time.Second):
		p, _ := ea.Progress(tenant)
		t.Fatalf("the pass's round did not finish while the scrub ran: %+v", p)
	}
	p, _ := ea.Progress(tenant)
	if p.Last.Scanned != keys {
		t.Fatalf("the pass's round: %+v, want %d keys scanned", p.Last, keys)
	}
}

// TestFailedPublishKeepsTheWrites: a delta publish that fails keeps the
// writes for the next publish, which a peer's round then finds.
func TestFailedPublishKeepsTheWrites(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	ea, ec := digestEngine(t, a, b), digestEngine(t, c, b)
	fill(t, a, 100)
	if _, err := ea.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	runRound(t, ea)
	runRound(t, ec)
	put(t, c, digestKey(5), `{"by":"c"}`)
	if _, err := ec.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	b.SetFault(func(op, _, _ string) error {
		if op == backend.OpPutBlob {
			return fault.New(fault.Transient, fault.Context{}, "down")
		}
		return nil
	})
	if err := ec.PublishDigests(bg); err == nil {
		t.Fatal("publish succeeded through a failing backend")
	}
	b.SetFault(nil)
	if err := ec.PublishDigests(bg); err != nil {
		t.Fatal(err)
	}
	if st := runRound(t, ea); st.Actions[Download] != 1 {
		t.Fatalf("a's round after the publish: %+v, want the write downloaded", st)
	}
}

// TestWritesBeforeTheFirstRound: a restarted node uploads before its first
// round has read the layout; the writes are kept until it does, so its
// round lists nothing and a peer's round finds them.
func TestWritesBeforeTheFirstRound(t *testing.T) {
	b := mem.New("b")
	a, c := openStore(t, "a"), openStore(t, "c")
	ea, ec := digestEngine(t, a, b), digestEngine(t, c, b)
	fill(t, a, 100)
	if _, err := ea.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	runRound(t, ea)
	runRound(t, ec)
	ec.Close()
	ec2 := digestEngine(t, c, b)
	put(t, c, digestKey(50), `{"by":"c"}`)
	if _, err := ec2.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if st := runRound(t, ec2); st.Listed != 0 {
		t.Fatalf("the writer's first round: %+v, want nothing listed", st)
	}
	if st := runRound(t, ea); st.Actions[Download] != 1 {
		t.Fatalf("the peer's round: %+v, want the write downloaded", st)
	}
}

// TestDigestRoundFindsUnuploadedChange: a document changed on the node
// whose upload has not run yet keeps its old base, so the local digest
// (from the bases) still equals the backend's. Only the comparison of the
// document's version with its base marks the segment dirty, and the round
// must list it and upload the change.
func TestDigestRoundFindsUnuploadedChange(t *testing.T) {
	const n = 3000
	s := openStore(t, "a")
	b := mem.New("b")
	e := digestEngine(t, s, b)
	fill(t, s, n)
	if _, err := e.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if st := runRound(t, e); st.Listed != n {
		t.Fatalf("the round laying the tenant out: %+v, want %d listed", st, n)
	}
	if st := runRound(t, e); st.Listed != 0 || st.Applied() != 0 {
		t.Fatalf("in-sync round: %+v, want nothing listed or applied", st)
	}
	k := digestKey(n / 2)
	rec, err := s.Put(bg, tenant, k, []byte(`{"changed":true}`), doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	st := runRound(t, e)
	if st.Actions[Upload] != 1 || st.Listed == 0 || st.Listed > segmentKeys+1 {
		t.Fatalf("round after a change not uploaded: %+v; want its segment listed and 1 upload", st)
	}
	o, err := b.Get(bg, tenant, k)
	if err != nil || o.Version.ID() != rec.Version.ID() {
		t.Fatalf("backend holds %v, %v; want the changed version %s", o.Version.ID(), err, rec.Version.ID())
	}
}
