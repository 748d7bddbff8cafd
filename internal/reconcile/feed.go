package reconcile

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// FeedConfig configures the change feed: news between nodes through the
// backend (docs/design/replication.md, "Change feed"). The zero value, or
// a backend without blobs, turns it off.
type FeedConfig struct {
	// NodeID is this node's id (store.Identity's): its feed objects are
	// named by it. "" turns the feed off.
	NodeID string
	// Poll is how often the peers' feeds of each tenant are read; 0 means
	// DefaultFeedPoll.
	Poll time.Duration
	// Flush is the longest an uploaded change waits for its feed object;
	// 0 means DefaultFeedFlush.
	Flush time.Duration
	// MaxEntries bounds a feed object's entries; 0 means DefaultFeedEntries.
	MaxEntries int
	// Retention: the node deletes its own feed objects published longer
	// ago than this. 0 means DefaultGrace; the node passes the larger of
	// its --feed-retention and the tombstone grace period, so no feed
	// object goes before a collected tombstone's grace has passed.
	Retention time.Duration
}

// Feed defaults.
const (
	DefaultFeedPoll    = 500 * time.Millisecond
	DefaultFeedFlush   = 100 * time.Millisecond
	DefaultFeedEntries = 1000

	// feedPending bounds the entries waiting for a feed object per
	// tenant (a backend that refuses feed objects for long): past it the
	// oldest are dropped, and peers learn of those changes from their
	// rounds. feedPendingBytes bounds the inline bodies they hold: past it
	// new entries go without a body (the reader gets the object).
	feedPending      = 10 * DefaultFeedEntries
	feedPendingBytes = 8 << 20
	// feedReadPerPoll bounds the objects one poll reads of one peer, so a
	// long replay is spread over polls.
	feedReadPerPoll = 100
	// feedDiscoverEvery is how many polls of a tenant pass between
	// listings for new peers.
	feedDiscoverEvery = 4
	// feedFallbackRetry is the least time between two rounds asked for
	// by one gap (a round the guard stopped waits for a confirmation).
	feedFallbackRetry = 5 * time.Second
	// feedApplyConcurrency is how many keys of a feed object are applied
	// at once.
	feedApplyConcurrency = 64
	// feedMaxMarks bounds the publish-time marks kept for retention.
	feedMaxMarks = 64
)

// FeedObserver is an optional capability of an Observer: it hears about
// the change feed.
type FeedObserver interface {
	// FeedPublished: one feed object with entries entries was written.
	FeedPublished(backend string, entries int)
	// FeedRead: one feed object of peer (its node id) was read and its
	// entries applied, lag after its publication.
	FeedRead(backend, peer string, entries int, lag time.Duration)
	// FeedFallback: a gap in a peer's feed made the tenant fall back to a
	// round.
	FeedFallback(backend string)
	// FeedCaughtUp: the tenant whose object of peer was read last has
	// read everything peer published: peer's lag is 0 until its next
	// object.
	FeedCaughtUp(backend, peer string)
}

// feed is an engine's change feed: the publisher of this node's uploads
// and the tailer of its peers'. Both run on goroutines Run starts and
// waits for (runFeed).
type feed struct {
	e     *Engine
	blobs backend.Blobs
	self  string // this node's id in hex, as in its feed objects' names
	cfg   FeedConfig
	wake  chan struct{} // a tenant's pending entries filled an object
	// round runs a fallback round of a tenant: Engine.RunRound, on Run's
	// goroutine like every round.
	round func(ctx context.Context, tenant string) (Stats, error)

	loadMu sync.Mutex // serialises loading a tenant's state (it may list the backend)
	saveMu sync.Mutex // serialises saving the states; taken before mu

	mu      sync.Mutex // guards tenants and their contents, and lagFrom
	tenants map[string]*feedTenant
	// lagFrom is, per peer (hex id), the tenant whose object of it set
	// the lag reported last, and the peer's node id: when that tenant
	// has read the peer's feed to its end, the lag reported is 0 (a
	// quiet peer's last lag, kept, would look like a feed stuck behind).
	lagFrom map[string]lagSource
}

type lagSource struct{ tenant, node string }

// feedTenant is the feed's state of one tenant.
type feedTenant struct {
	loaded  bool
	state   feedState
	pending []feedEntry
	bytes   int       // inline body bytes in pending
	since   time.Time // when the oldest pending entry was noted
	peers   map[string]bool
	polls   int
	gap     *feedGap
	trimmed time.Time
	rolled  uint64              // the seq of the last object roll published, if that is the newest
	peer    map[string]PeerFeed // status per peer
	polled  time.Time           // the end of the last poll that succeeded
	pollErr error               // the last poll's error; nil after one succeeds
	polling time.Time           // the start of the poll in progress; zero between polls
}

// feedGap is a fallback round in progress: the peers' last seqs probed
// before it, which its completion lets the cursors skip to.
type feedGap struct {
	probed time.Time
	tried  time.Time // when a round was last asked for (guarded by the tail goroutine, its only user)
	hi     map[string]uint64
	reason string
}

// PeerFeed is what the engine last read of one peer's feed of a tenant.
type PeerFeed struct {
	Cursor uint64        // the last seq read
	Lag    time.Duration // from its publication to its application
	Read   time.Time     // when
}

// FeedStatus is a tenant's feed as the admin status shows it.
type FeedStatus struct {
	Published uint64              // this node's last seq
	Pending   int                 // entries waiting for a feed object
	Peers     map[string]PeerFeed // by peer node id
	Fallback  string              // why a fallback round is pending, or ""
	// Polled is when the last poll that read every peer's feed without
	// an error ended (zero before one). Error is the last poll's error, nil
	// after one succeeds, or says that the poll in progress has waited
	// long on the backend: while the backend fails or does not answer, the
	// peers' lags are those of the last objects read, and only Error and
	// Polled show that nothing newer is being read.
	Polled time.Time
	Error  error
}

func newFeed(e *Engine) *feed {
	cfg := e.cfg.Feed
	if cfg.NodeID == "" {
		return nil
	}
	bl, ok := backend.BlobsOf(e.be)
	if !ok || len(nodeHex(cfg.NodeID)) > backend.MaxBlobSegment {
		return nil // no blobs, or a node id too long to name objects by: news waits for rounds
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultFeedPoll
	}
	if cfg.Flush <= 0 {
		cfg.Flush = DefaultFeedFlush
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultFeedEntries
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultGrace
	}
	return &feed{e: e, blobs: bl, self: nodeHex(cfg.NodeID), cfg: cfg, wake: make(chan struct{}, 1), round: e.RunRound,
		tenants: map[string]*feedTenant{}}
}

// FeedStatus returns tenant's feed state; false when the feed is off or
// has not touched the tenant.
func (e *Engine) FeedStatus(tenant string) (FeedStatus, bool) {
	f := e.feed
	if f == nil {
		return FeedStatus{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, ok := f.tenants[tenant]
	if !ok {
		return FeedStatus{}, false
	}
	s := FeedStatus{Published: ft.state.seq, Pending: len(ft.pending), Peers: map[string]PeerFeed{}}
	for p, c := range ft.state.cursors {
		pf := ft.peer[p]
		pf.Cursor = c
		s.Peers[peerName(p)] = pf
	}
	if ft.gap != nil {
		s.Fallback = ft.gap.reason
	}
	s.Polled, s.Error = ft.polled, ft.pollErr
	if !ft.polling.IsZero() && ft.gap == nil { // a fallback round's time is not the backend's
		// A backend that does not answer holds a read until its timeout
		// (tens of seconds): say so before it ends.
		if d := e.cfg.Now().Sub(ft.polling); d > max(feedHangAfter, 4*f.cfg.Poll) {
			s.Error = fmt.Errorf("a read of the peers' feeds has waited %v on the backend", d.Round(time.Second))
		}
	}
	return s, true
}

// feedHangAfter is the least time a poll in progress must have waited for
// the status to call it waiting.
const feedHangAfter = 5 * time.Second

func peerName(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		return h
	}
	return string(b)
}

// note records that the backend now holds v of key with etag: an entry
// for the tenant's next feed object. Called by Engine.put after every
// document write, the uploader's and a round's.
func (f *feed) note(tenant, key string, v *doc.Version, etag string, body []byte) {
	if f == nil {
		return
	}
	f.mu.Lock()
	ft := f.tenantLocked(tenant)
	en := feedEntry{key: key, version: *v, etag: etag}
	if len(body) <= MaxInlineBody && ft.bytes+len(body) <= feedPendingBytes {
		en.inline, en.body = true, body
		ft.bytes += len(body)
	}
	if len(ft.pending) == 0 {
		ft.since = f.e.cfg.Now()
	}
	if len(ft.pending) >= feedPending {
		ft.bytes -= len(ft.pending[0].body)
		ft.pending = slices.Delete(ft.pending, 0, 1)
	}
	ft.pending = append(ft.pending, en)
	full := len(ft.pending) >= f.cfg.MaxEntries
	f.mu.Unlock()
	if full {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

func (f *feed) tenantLocked(tenant string) *feedTenant {
	ft, ok := f.tenants[tenant]
	if !ok {
		ft = &feedTenant{peers: map[string]bool{}, peer: map[string]PeerFeed{}, state: feedState{cursors: map[string]uint64{}}}
		f.tenants[tenant] = ft
	}
	return ft
}

// stateName is the store checkpoint row that holds the feed's state of a
// tenant: a pseudo-backend "<backend>/feed", which cannot collide with a
// backend's own row because '/' is not allowed in a backend's name.
func (f *feed) stateName() string { return f.e.name + "/feed" }

// load reads tenant's persisted state once. Without one (a new or wiped
// node) this node's last seq is found in the backend, so a node rebuilt
// with the same id continues its sequence instead of reusing it.
func (f *feed) load(ctx context.Context, tenant string) (*feedTenant, error) {
	f.loadMu.Lock()
	defer f.loadMu.Unlock()
	f.mu.Lock()
	ft := f.tenantLocked(tenant)
	loaded := ft.loaded
	f.mu.Unlock()
	if loaded {
		return ft, nil
	}
	raw, ok, err := f.e.st.Checkpoint(f.stateName(), tenant)
	if err != nil {
		return nil, err
	}
	st := feedState{cursors: map[string]uint64{}}
	if ok {
		if st, err = decodeFeedState(raw); err != nil {
			return nil, fault.E(fault.Corruption, fault.Context{Op: "reconcile.feed_state", Backend: f.e.name, Tenant: tenant}, err)
		}
	} else if st.seq, err = f.lastSeq(ctx, tenant, f.self); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ft.state.seq = max(ft.state.seq, st.seq)
	ft.state.marks = st.marks
	for p, c := range st.cursors {
		ft.state.cursors[p] = max(ft.state.cursors[p], c)
	}
	ft.loaded = true
	return ft, nil
}

// save persists ft's state. f.mu is not held across the store's write
// and its fsync: every upload takes f.mu to note its entry (note), and
// would wait for it. saveMu orders the saves, and the state is encoded
// after it is taken, so a save never overwrites a newer state with an
// older one.
func (f *feed) save(tenant string, ft *feedTenant) error {
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	f.mu.Lock()
	raw := ft.state.encode()
	f.mu.Unlock()
	return f.e.st.PutCheckpoint(f.stateName(), tenant, raw)
}

// nextAfter returns the smallest seq of node's feed of tenant above seq.
func (f *feed) nextAfter(ctx context.Context, tenant, node string, seq uint64) (uint64, bool, error) {
	prefix, after := feedPeerPrefix(tenant, node), ""
	if seq > 0 {
		after = feedName(tenant, node, seq)
	}
	page, err := call(ctx, f.e, backend.OpListBlobs, func(ctx context.Context) (backend.Page, error) {
		return f.blobs.ListBlobs(ctx, prefix, after, 1)
	})
	if err != nil {
		return 0, false, f.e.unavailable(err)
	}
	for _, en := range page.Entries {
		if n, s, ok := parseFeedName(tenant, en.Key); ok && n == node {
			return s, true, nil
		}
	}
	return 0, false, nil
}

// lastSeq finds the highest seq of node's feed of tenant (0: none) in
// O(log n) single-entry listings: galloping up from the first, then
// bisecting, since a listing can only go forward.
func (f *feed) lastSeq(ctx context.Context, tenant, node string) (uint64, error) {
	lo, ok, err := f.nextAfter(ctx, tenant, node, 0)
	if err != nil || !ok {
		return 0, err
	}
	var hi uint64
	for step := uint64(1); ; step *= 2 {
		probe := lo + min(step, math.MaxUint64-lo)
		s, ok, err := f.nextAfter(ctx, tenant, node, probe)
		if err != nil {
			return 0, err
		}
		if !ok {
			hi = probe
			break
		}
		lo = s
	}
	for lo < hi { // lo exists; nothing above hi
		mid := lo + (hi-lo)/2
		s, ok, err := f.nextAfter(ctx, tenant, node, mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = s
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// run is the feed's pair of goroutines: the publisher and the tailer. It
// returns when both have stopped, after ctx ends.
func (f *feed) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { f.publishLoop(ctx) })
	wg.Go(func() { f.tailLoop(ctx) })
	wg.Wait()
}

func (f *feed) publishLoop(ctx context.Context) {
	t := time.NewTicker(f.cfg.Flush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.wake:
		}
		f.publishDue(ctx)
		f.trimDue(ctx)
	}
}

// publishDue writes a feed object for every tenant whose pending entries
// fill one or waited Flush.
func (f *feed) publishDue(ctx context.Context) {
	now := f.e.cfg.Now()
	f.mu.Lock()
	var due []string
	for t, ft := range f.tenants {
		if len(ft.pending) >= f.cfg.MaxEntries || (len(ft.pending) > 0 && now.Sub(ft.since) >= f.cfg.Flush) {
			due = append(due, t)
		}
	}
	f.mu.Unlock()
	slices.Sort(due)
	for _, t := range due {
		if err := f.publish(ctx, t); err != nil && ctx.Err() == nil && !errors.Is(err, ErrBackendUnavailable) {
			// Thinned: the writes are retried many times a second while a
			// backend refuses them.
			f.e.warnRepeated(ctx, "feed-publish "+t, "reconcile: writing a feed object failed; its entries wait for the next", "backend", f.e.name,
				"tenant", t, "class", fault.ClassOf(err).String(), "err", err)
		}
	}
}

// publish writes one feed object of tenant's pending entries under the
// next seq. The object is written create-only: a seq found taken (this
// node crashed after writing it and before saving the seq) is skipped.
// The seq is saved after the write; on a failed write the entries go back
// to the front of the pending list.
func (f *feed) publish(ctx context.Context, tenant string) error {
	ft, err := f.load(ctx, tenant)
	if err != nil {
		return err
	}
	f.mu.Lock()
	n := min(len(ft.pending), f.cfg.MaxEntries)
	entries := slices.Clone(ft.pending[:n])
	ft.pending = slices.Delete(ft.pending, 0, n)
	for i := range entries {
		ft.bytes -= len(entries[i].body)
	}
	ft.since = f.e.cfg.Now()
	seq := ft.state.seq + 1
	f.mu.Unlock()
	if n == 0 {
		return nil
	}
	obj := feedObject{tenant: tenant, node: f.e.cfg.Feed.NodeID, published: f.e.cfg.Now(), entries: entries}
	for tries := 0; ; tries++ {
		obj.seq = seq
		name := feedName(tenant, f.self, seq)
		_, err = call(ctx, f.e, backend.OpPutBlob, func(ctx context.Context) (string, error) {
			return f.blobs.PutBlob(ctx, name, obj.encode(), backend.Precondition{IfNoneMatch: true})
		})
		if fault.ClassOf(err) != fault.PreconditionFailed || tries == 3 {
			break
		}
		last, lerr := f.lastSeq(ctx, tenant, f.self) // taken: continue after the highest
		if lerr != nil {
			err = lerr
			break
		}
		seq = max(seq, last) + 1
	}
	f.mu.Lock()
	if err != nil {
		for i := range entries {
			ft.bytes += len(entries[i].body)
		}
		ft.pending = append(entries, ft.pending...)
		if len(ft.pending) > feedPending {
			ft.pending = ft.pending[len(ft.pending)-feedPending:]
		}
		f.mu.Unlock()
		return f.e.unavailable(err)
	}
	ft.state.seq = max(ft.state.seq, seq)
	f.markLocked(ft, seq, obj.published)
	f.mu.Unlock()
	if o, ok := f.e.cfg.Observer.(FeedObserver); ok {
		o.FeedPublished(f.e.name, len(entries))
	}
	return f.save(tenant, ft)
}

// markLocked records seq's publish time for retention, at most one mark
// per Retention/feedMaxMarks, so trimming is that precise.
func (f *feed) markLocked(ft *feedTenant, seq uint64, at time.Time) {
	every := f.cfg.Retention / feedMaxMarks
	if m := ft.state.marks; len(m) > 0 && at.UnixNano()-m[len(m)-1].at < int64(every) {
		m[len(m)-1].seq = seq // the newest mark moves up: objects up to seq were published by its time or later
		return
	}
	ft.state.marks = append(ft.state.marks, feedMark{seq: seq, at: at.UnixNano()})
	if len(ft.state.marks) > feedMaxMarks {
		ft.state.marks = ft.state.marks[1:]
	}
}

// trimDue deletes, for each tenant at most once per Retention/feedMaxMarks,
// this node's feed objects published more than Retention ago. A tenant
// whose feed has been silent for Retention (a removed tenant, one this
// node no longer writes) first gets an object with no entries (roll):
// its last objects, which hold the bodies of its last writes, deleted
// documents' included, then go too, while the node's highest number stays
// in the backend for readers and for this node's own next start.
func (f *feed) trimDue(ctx context.Context) {
	now := f.e.cfg.Now()
	every := max(f.cfg.Retention/feedMaxMarks, f.cfg.Flush)
	span := f.cfg.Retention / feedMaxMarks // the publish times one mark covers: markLocked
	f.mu.Lock()
	type job struct {
		tenant string
		upTo   uint64
		roll   bool
	}
	var jobs []job
	for t, ft := range f.tenants {
		if !ft.loaded || now.Sub(ft.trimmed) < every {
			continue
		}
		ft.trimmed = now
		// A mark's time is that of the first object it covers, and it moves
		// up while objects follow within a mark's span: the objects up to
		// mark i were all published before mark i+1's time.
		var upTo uint64
		for i := 0; i+1 < len(ft.state.marks); i++ {
			if now.Sub(time.Unix(0, ft.state.marks[i+1].at)) >= f.cfg.Retention {
				upTo = ft.state.marks[i].seq
			}
		}
		// The last mark's objects were all published within span of its
		// time: once that is Retention ago, they may go.
		// When the newest object is the roll itself, everything before it
		// goes, and the roll stays: it holds nothing.
		m := ft.state.marks
		switch last := len(m) - 1; {
		case last >= 0 && now.Sub(time.Unix(0, m[last].at)) >= f.cfg.Retention+span && m[last].seq == ft.rolled:
			jobs = append(jobs, job{t, m[last].seq - 1, false})
		case last >= 0 && now.Sub(time.Unix(0, m[last].at)) >= f.cfg.Retention+span:
			jobs = append(jobs, job{t, m[last].seq, true})
		case upTo > 0:
			jobs = append(jobs, job{t, upTo, false})
		}
	}
	f.mu.Unlock()
	for _, j := range jobs {
		err := f.rollThenTrim(ctx, j.tenant, j.upTo, j.roll)
		if err != nil && ctx.Err() == nil {
			// Once a tick per tenant while the backend is down: as the
			// feed's other failures, at most a line a minute.
			f.e.warnRepeated(ctx, "feed-trim", "reconcile: trimming the feed failed", "backend", f.e.name, "tenant", j.tenant, "err", err)
		}
	}
}

// rollThenTrim trims tenant's feed up to upTo, after publishing an object
// with no entries past it if roll (see trimDue).
func (f *feed) rollThenTrim(ctx context.Context, tenant string, upTo uint64, roll bool) error {
	if roll {
		if err := f.roll(ctx, tenant); err != nil {
			return err
		}
	}
	return f.trim(ctx, tenant, upTo)
}

// roll publishes an object with no entries as this node's next of tenant.
// A number already taken (a publish whose PUT landed before a crash kept
// its number from the saved state) is passed over, as publish does.
func (f *feed) roll(ctx context.Context, tenant string) error {
	ft, err := f.load(ctx, tenant)
	if err != nil {
		return err
	}
	f.mu.Lock()
	seq := ft.state.seq + 1
	f.mu.Unlock()
	obj := feedObject{tenant: tenant, node: f.e.cfg.Feed.NodeID, published: f.e.cfg.Now()}
	for tries := 0; ; tries++ {
		obj.seq = seq
		_, err = call(ctx, f.e, backend.OpPutBlob, func(ctx context.Context) (string, error) {
			return f.blobs.PutBlob(ctx, feedName(tenant, f.self, seq), obj.encode(), backend.Precondition{IfNoneMatch: true})
		})
		if fault.ClassOf(err) != fault.PreconditionFailed || tries == 3 {
			break
		}
		last, lerr := f.lastSeq(ctx, tenant, f.self)
		if lerr != nil {
			err = lerr
			break
		}
		seq = max(seq, last) + 1
	}
	if err != nil {
		return f.e.unavailable(err)
	}
	f.mu.Lock()
	ft.state.seq = max(ft.state.seq, seq)
	f.markLocked(ft, seq, obj.published)
	ft.rolled = seq
	f.mu.Unlock()
	return f.save(tenant, ft)
}

// trim deletes this node's feed objects of tenant up to seq upTo.
func (f *feed) trim(ctx context.Context, tenant string, upTo uint64) error {
	prefix := feedPeerPrefix(tenant, f.self)
	for {
		page, err := call(ctx, f.e, backend.OpListBlobs, func(ctx context.Context) (backend.Page, error) {
			return f.blobs.ListBlobs(ctx, prefix, "", f.e.cfg.PageSize)
		})
		if err != nil {
			return err
		}
		deleted := 0
		for _, en := range page.Entries {
			node, seq, ok := parseFeedName(tenant, en.Key)
			if !ok || node != f.self {
				continue
			}
			if seq > upTo {
				return nil
			}
			if err := f.deleteBlob(ctx, en.Key); err != nil {
				return err
			}
			deleted++
		}
		if !page.More || deleted == 0 {
			return nil
		}
	}
}

func (f *feed) deleteBlob(ctx context.Context, name string) error {
	_, err := call(ctx, f.e, backend.OpDeleteBlob, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, f.blobs.DeleteBlob(ctx, name, backend.Precondition{})
	})
	return err
}

func (f *feed) tailLoop(ctx context.Context) {
	t := time.NewTicker(f.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, tenant := range f.e.sortedTenants() {
			if ctx.Err() != nil {
				return
			}
			_, err := f.poll(ctx, tenant)
			switch {
			case err == nil || ctx.Err() != nil || errors.Is(err, ErrBackendUnavailable):
			case errors.Is(err, ErrNeedsConfirm):
				f.e.warnHeld(ctx, tenant, "feed", err)
			default:
				f.e.warnRepeated(ctx, "feed "+tenant, "reconcile: reading the peers' feeds failed", "backend", f.e.name,
					"tenant", tenant, "class", fault.ClassOf(err).String(), "err", err)
			}
		}
	}
}

// poll reads what tenant's peers published since the cursors and applies
// it, or, after a gap, waits for a round that covers it. It returns what
// it applied.
func (f *feed) poll(ctx context.Context, tenant string) (Stats, error) {
	g := f.e.feedGuard(tenant)
	f.mu.Lock()
	f.tenantLocked(tenant).polling = f.e.cfg.Now()
	f.mu.Unlock()
	err := f.pollWith(ctx, tenant, g)
	f.mu.Lock()
	ft := f.tenantLocked(tenant)
	ft.polling = time.Time{}
	if ctx.Err() == nil { // a poll cut by the engine's stop says nothing of the backend
		if ft.pollErr = err; err == nil {
			ft.polled = f.e.cfg.Now()
		}
	}
	f.mu.Unlock()
	return g.st, err
}

func (f *feed) pollWith(ctx context.Context, tenant string, g *round) error {
	ft, err := f.load(ctx, tenant)
	if err != nil {
		return err
	}
	f.mu.Lock()
	discover := ft.polls%feedDiscoverEvery == 0
	ft.polls++
	gap := ft.gap
	f.mu.Unlock()
	if discover {
		if err := f.discover(ctx, tenant, ft); err != nil {
			return err
		}
	}
	if gap != nil {
		return f.fallback(ctx, tenant, ft, gap)
	}
	f.mu.Lock()
	peers := slices.Sorted(maps.Keys(ft.peers))
	f.mu.Unlock()
	for _, p := range peers {
		reason, err := f.tailPeer(ctx, tenant, ft, p, g)
		if err != nil && !errors.Is(err, ErrNeedsConfirm) {
			return err
		}
		if errors.Is(err, ErrNeedsConfirm) {
			reason = "the mass-deletion guard stopped the feed of " + peerName(p)
			// The round the gap falls back to must not count the share
			// afresh, after what the feed applied: it is held as a
			// round stopped by the guard is.
			if held, _ := f.e.held(tenant); !held {
				if l := f.e.cfg.Logger; l != nil {
					l.WarnContext(ctx, "reconcile: feed stopped by the mass-deletion guard", "backend", f.e.name,
						"tenant", tenant, "peer", peerName(p), "err", err)
				}
			}
			f.e.hold(ctx, tenant, true)
			if o := f.e.cfg.Observer; o != nil {
				o.ReconcileAction(f.e.name, ActionGuardStop)
			}
		}
		if reason != "" {
			return f.startFallback(ctx, tenant, ft, reason)
		}
	}
	return nil
}

// discover lists tenant's feed for peers: one single-entry listing per
// peer, each starting after the previous peer's names ('~' sorts after
// every character of a seq).
func (f *feed) discover(ctx context.Context, tenant string, ft *feedTenant) error {
	after := ""
	for range 10000 {
		page, err := call(ctx, f.e, backend.OpListBlobs, func(ctx context.Context) (backend.Page, error) {
			return f.blobs.ListBlobs(ctx, feedTenantPrefix(tenant), after, 1)
		})
		if err != nil {
			return f.e.unavailable(err)
		}
		if len(page.Entries) == 0 {
			return nil
		}
		node, _, ok := parseFeedName(tenant, page.Entries[0].Key)
		if !ok {
			after = page.Entries[0].Key
			continue
		}
		after = feedPeerPrefix(tenant, node) + "~"
		if node != f.self {
			f.mu.Lock()
			ft.peers[node] = true
			f.mu.Unlock()
		}
	}
	return nil
}

// tailPeer reads peer's new feed objects of tenant in seq order and
// applies them, saving the cursor after each. It returns a reason for a
// fallback round when the next object is missing or fails verification.
func (f *feed) tailPeer(ctx context.Context, tenant string, ft *feedTenant, peer string, g *round) (gap string, err error) {
	f.mu.Lock()
	cur, known := ft.state.cursors[peer]
	f.mu.Unlock()
	if !known && f.e.CatchingUp(tenant) {
		return "catching up: the round covers what " + peerName(peer) + " published", nil
	}
	prefix := feedPeerPrefix(tenant, peer)
	for read := 0; read < feedReadPerPoll; {
		after := ""
		if cur > 0 {
			after = feedName(tenant, peer, cur)
		}
		page, err := call(ctx, f.e, backend.OpListBlobs, func(ctx context.Context) (backend.Page, error) {
			return f.blobs.ListBlobs(ctx, prefix, after, feedReadPerPoll-read)
		})
		if err != nil {
			return "", f.e.unavailable(err)
		}
		for _, en := range page.Entries {
			node, seq, ok := parseFeedName(tenant, en.Key)
			if !ok || node != peer {
				continue
			}
			if seq != cur+1 {
				return fmt.Sprintf("%s's feed skips from %d to %d", peerName(peer), cur, seq), nil
			}
			reason, err := f.readObject(ctx, tenant, ft, peer, en.Key, seq, g)
			if err != nil || reason != "" {
				return reason, err
			}
			cur = seq
			read++
		}
		if !page.More || len(page.Entries) == 0 {
			if read == 0 { // a poll with nothing to read: see caughtUp
				f.caughtUp(tenant, ft, peer)
			}
			return "", nil
		}
	}
	return "", nil
}

// caughtUp records that a poll of tenant found nothing new in peer's
// feed: the lag is 0. Not at the end of a poll that read objects: a feed
// that stays behind shows its lag from one poll to the next.
func (f *feed) caughtUp(tenant string, ft *feedTenant, peer string) {
	f.mu.Lock()
	if p, ok := ft.peer[peer]; ok && p.Lag != 0 {
		p.Lag = 0
		ft.peer[peer] = p
	}
	src, ok := f.lagFrom[peer]
	if ok && src.tenant == tenant {
		delete(f.lagFrom, peer)
	}
	f.mu.Unlock()
	if o, isFeed := f.e.cfg.Observer.(FeedObserver); isFeed && ok && src.tenant == tenant {
		o.FeedCaughtUp(f.e.name, src.node)
	}
}

// readObject reads, verifies and applies one feed object, then saves the
// cursor past it.
func (f *feed) readObject(ctx context.Context, tenant string, ft *feedTenant, peer, name string, seq uint64, g *round) (gap string, err error) {
	type got struct{ data []byte }
	r, err := call(ctx, f.e, backend.OpGetBlob, func(ctx context.Context) (got, error) {
		data, _, err := f.blobs.GetBlob(ctx, name)
		return got{data}, err
	})
	switch {
	case fault.ClassOf(err) == fault.NotFound:
		return fmt.Sprintf("%s's feed object %d vanished (trimmed)", peerName(peer), seq), nil
	case fault.ClassOf(err) == fault.Corruption:
		f.corrupt(ctx, tenant, name, err)
		return fmt.Sprintf("%s's feed object %d failed verification", peerName(peer), seq), nil
	case err != nil:
		return "", f.e.unavailable(err)
	}
	obj, err := decodeFeed(r.data)
	if err == nil && (obj.tenant != tenant || nodeHex(obj.node) != peer || obj.seq != seq) {
		err = fmt.Errorf("%w: names %s/%q/%d, stored as %s", errBadFeed, obj.tenant, obj.node, obj.seq, name)
	}
	if err != nil {
		f.corrupt(ctx, tenant, name, corruptFeed(f.e.name, tenant, name, err))
		return fmt.Sprintf("%s's feed object %d failed verification", peerName(peer), seq), nil
	}
	if err := f.apply(ctx, tenant, obj, g); err != nil {
		return "", err
	}
	now := f.e.cfg.Now()
	lag := max(0, now.Sub(obj.published))
	f.mu.Lock()
	ft.state.cursors[peer] = max(ft.state.cursors[peer], seq)
	if peer == f.self { // a restore's replay reads this node's own feed: not a peer's
		f.mu.Unlock()
		return "", f.save(tenant, ft)
	}
	ft.peer[peer] = PeerFeed{Cursor: seq, Lag: lag, Read: now}
	if f.lagFrom == nil {
		f.lagFrom = map[string]lagSource{}
	}
	f.lagFrom[peer] = lagSource{tenant: tenant, node: obj.node}
	f.mu.Unlock()
	if o, ok := f.e.cfg.Observer.(FeedObserver); ok {
		o.FeedRead(f.e.name, obj.node, len(obj.entries), lag)
	}
	return "", f.save(tenant, ft)
}

func (f *feed) corrupt(ctx context.Context, tenant, name string, err error) {
	if o := f.e.cfg.Observer; o != nil {
		o.ReconcileAction(f.e.name, ActionCorrupt)
	}
	if l := f.e.cfg.Logger; l != nil {
		l.WarnContext(ctx, "reconcile: corrupt feed object", "backend", f.e.name, "tenant", tenant, "name", name, "err", err)
	}
}

// apply syncs each entry's key through the engine's one-key sync with the
// remote side known from the entry: the same InFlight, decision, apply,
// compare-and-set and bases as a round's, under round g's deletion guard.
func (f *feed) apply(ctx context.Context, tenant string, obj *feedObject, g *round) error {
	e := f.e
	if e.cfg.Tracer != nil {
		var span trace.Span
		ctx, span = e.cfg.Tracer.Start(ctx, "reconcile.feed.apply", trace.WithAttributes(attrTenant.String(tenant),
			attrBackend.String(e.name), attribute.String("cairn.feed.node", obj.node), attribute.Int64("cairn.feed.seq", int64(obj.seq)),
			attribute.Int("cairn.feed.entries", len(obj.entries))))
		defer span.End()
	}
	g.span = trace.SpanFromContext(ctx)
	// The last entry of a key stands for the earlier ones: the backend
	// held it after them.
	last := make(map[string]int, len(obj.entries))
	for i := range obj.entries {
		last[obj.entries[i].key] = i
	}
	var (
		mu  sync.Mutex // guards g.st
		fan = newFanOut(max(e.cfg.UploadConcurrency, feedApplyConcurrency))
	)
	// Keys are applied many at a time so that their store commits share
	// fsyncs: an object's entries need no backend call unless a body is
	// not inline, so this is bounded by the store, not the backend.
	for i := range obj.entries {
		if last[obj.entries[i].key] != i {
			continue
		}
		if !fan.Go(ctx, func() error {
			var st Stats
			err := f.applyEntry(ctx, tenant, &obj.entries[i], &st, g)
			mu.Lock()
			defer mu.Unlock()
			g.st.Scanned++
			g.st.add(&st)
			if g.replay && g.st.Scanned%progressEvery == 0 {
				g.publish(false) // a restore's replay of the feeds shows its progress too
			}
			return err
		}) {
			break
		}
	}
	return fan.Wait()
}

// applyEntry syncs one entry's key with the remote side known from it.
func (f *feed) applyEntry(ctx context.Context, tenant string, en *feedEntry, st *Stats, g *round) error {
	local, err := f.e.localHeader(ctx, tenant, en.key)
	if err != nil {
		return err
	}
	remote := &backend.Entry{Key: en.key, ETag: en.etag}
	var known *backend.Object
	if en.inline {
		known = &backend.Object{Entry: *remote, Version: en.version, Body: en.body}
	}
	return f.e.syncKeyState(ctx, &keyState{tenant: tenant, key: en.key, local: local, remote: remote, obj: known, announced: &en.version}, st, g)
}

// prime runs before the engine's first pass: for each tenant catching up
// it probes the peers' last seqs now, before the catch-up round starts,
// so that round covers what they published and the cursors skip to the
// probed seqs once it completes; news published after the probe is read
// from the feed. (A probe made while the round runs would leave what was
// published between its start and the probe, about keys it had passed,
// to a second round.)
func (f *feed) prime(ctx context.Context) {
	for _, tenant := range f.e.sortedTenants() {
		if !f.e.CatchingUp(tenant) {
			continue
		}
		ft, err := f.load(ctx, tenant)
		if err == nil {
			err = f.discover(ctx, tenant, ft)
		}
		if err == nil {
			err = f.probe(ctx, tenant, ft, "catching up: the catch-up round covers what the peers published")
		}
		if err != nil && ctx.Err() == nil && f.e.cfg.Logger != nil {
			f.e.cfg.Logger.WarnContext(ctx, "reconcile: probing the peers' feeds before catching up failed", "backend", f.e.name,
				"tenant", tenant, "err", err)
		}
	}
}

// probe records a gap of tenant: every known peer's last seq, probed now.
func (f *feed) probe(ctx context.Context, tenant string, ft *feedTenant, reason string) error {
	gap := &feedGap{probed: f.e.cfg.Now(), hi: map[string]uint64{}, reason: reason}
	f.mu.Lock()
	peers := slices.Sorted(maps.Keys(ft.peers))
	f.mu.Unlock()
	for _, p := range peers {
		hi, err := f.lastSeq(ctx, tenant, p)
		if err != nil {
			return err
		}
		gap.hi[p] = hi
	}
	f.mu.Lock()
	ft.gap = gap
	f.mu.Unlock()
	return nil
}

// startFallback probes every peer's last seq, then waits for a round of
// tenant that starts after the probe: it covers every change those objects
// announce, so the cursors may then skip to the probed seqs.
func (f *feed) startFallback(ctx context.Context, tenant string, ft *feedTenant, reason string) error {
	if err := f.probe(ctx, tenant, ft, reason); err != nil {
		return err
	}
	if o, ok := f.e.cfg.Observer.(FeedObserver); ok {
		o.FeedFallback(f.e.name)
	}
	if l := f.e.cfg.Logger; l != nil {
		l.InfoContext(ctx, "reconcile: feed gap; the tenant falls back to a round", "backend", f.e.name, "tenant", tenant, "reason", reason)
	}
	f.mu.Lock()
	gap := ft.gap
	f.mu.Unlock()
	return f.fallback(ctx, tenant, ft, gap)
}

// fallback ends gap once a whole round of tenant that started after its
// probe has completed; it asks for one unless the tenant is catching up
// (its pass's round is on the way).
func (f *feed) fallback(ctx context.Context, tenant string, ft *feedTenant, gap *feedGap) error {
	covered := func() bool {
		p, ok := f.e.Progress(tenant)
		return ok && p.LastErr == nil && !p.Last.Started.IsZero() && !p.Last.Started.Before(gap.probed) && p.Last.ResumedAfter == ""
	}
	now := f.e.cfg.Now()
	if !covered() && !f.e.CatchingUp(tenant) && (gap.tried.IsZero() || now.Sub(gap.tried) >= feedFallbackRetry) {
		gap.tried = now
		// Twice at most: a round that resumed a stopped one's cursor
		// covers only the keys after it, and the next starts from the
		// first key.
		for range 2 {
			if _, err := f.round(ctx, tenant); err != nil {
				return err
			}
			if covered() {
				break
			}
		}
	}
	if !covered() {
		return nil // the next poll looks again
	}
	f.mu.Lock()
	for p, hi := range gap.hi {
		ft.state.cursors[p] = max(ft.state.cursors[p], hi)
	}
	ft.gap = nil
	f.mu.Unlock()
	return f.save(tenant, ft)
}
