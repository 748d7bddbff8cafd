package reconcile

import (
	"context"
	"slices"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
)

// segTrack follows a round's listing segment by segment: the digest of
// what it listed in each segment it listed whole without anything changing
// under it (the corrections made at the round's end), and, for a round
// that lists the tenant from its first key, a new layout cut from the
// listing (used when there is none, or a segment outgrew the old one).
type segTrack struct {
	e      *Engine
	tenant string
	p      *digestPlan // nil: no layout

	fromStart bool // the round lists from the first key
	started   bool // a segment was begun
	cur       int  // segment being listed; -1 none
	lst       uint64
	count     int
	complete  bool // its listing started at its lower bound
	marks     int  // raced + corrupt keys when it started
	listed    map[int]uint64
	oversize  bool

	cand *cutLayout // nil unless the round lists from the first key
}

// cutLayout is a layout cut from a whole listing: a bound every
// segmentKeys keys, with each segment's listed digest.
type cutLayout struct {
	bounds []string
	segs   []uint64
	unsure []bool // something changed during the segment's listing
	cur    uint64
	count  int
	marks  int
	last   string
}

func newSegTrack(e *Engine, tenant string, p *digestPlan, fromStart bool) *segTrack {
	t := &segTrack{e: e, tenant: tenant, p: p, fromStart: fromStart, cur: -1, listed: map[int]uint64{}}
	if fromStart && e.dig.bl != nil && (p == nil || p.ranges == nil) {
		t.cand = &cutLayout{}
	}
	return t
}

// marksOf counts what makes a segment's listing unsure: keys raced or
// corrupt, and the round's own writes (the listing holds the ETag before).
func marksOf(st *Stats) int {
	return st.Raced + st.Corrupt + st.Repaired + st.Actions[Upload] + st.Actions[Conflict]
}

// begin starts segment i; complete says the listing starts at its bound.
func (t *segTrack) begin(i int, complete bool, st *Stats) {
	t.cur, t.lst, t.count, t.complete, t.marks, t.started = i, 0, 0, complete, marksOf(st), true
}

// emptyUpTo begins and ends the segments before i not listed yet: the
// listing found nothing in them.
func (t *segTrack) emptyUpTo(i int, st *Stats) {
	from := t.cur
	t.end(st)
	if !t.started && !t.fromStart {
		return
	}
	for j := from + 1; j < i; j++ {
		t.begin(j, true, st)
		t.end(st)
	}
}

// end closes the current segment.
func (t *segTrack) end(st *Stats) {
	if t.cur < 0 {
		return
	}
	if t.complete && marksOf(st) == t.marks {
		t.listed[t.cur] = t.lst
	}
	if t.count > relayoutFactor*segmentKeys {
		t.oversize = true
	}
	t.cur = -1
}

// key records key handled by the round, with its remote entry as listed
// (nil: none). In a full round it moves to key's segment, closing the
// segments passed (listed empty).
func (t *segTrack) key(key string, remote *backend.Entry, st *Stats, full bool) {
	if t.p != nil && full {
		i := t.p.lay.segment(key)
		if t.cur < 0 || i != t.cur {
			complete := t.started || t.fromStart
			t.emptyUpTo(i, st)
			t.begin(i, complete, st)
		}
	}
	if remote != nil {
		h := entryHash(key, remote.ETag)
		t.lst ^= h
		t.count++
		st.Listed++
		if c := t.cand; c != nil {
			c.cur ^= h
			c.count++
		}
	}
	if c := t.cand; c != nil {
		c.last = key
		if c.count >= segmentKeys {
			c.close(key, st)
		}
	}
}

func (c *cutLayout) close(bound string, st *Stats) {
	if bound != "" {
		c.bounds = append(c.bounds, bound)
	}
	c.segs = append(c.segs, c.cur)
	c.unsure = append(c.unsure, marksOf(st) != c.marks)
	c.cur, c.count, c.marks = 0, 0, marksOf(st)
}

// done closes the listing of a full round that reached the end: the
// segments after the last key were listed empty.
func (t *segTrack) done(st *Stats) {
	if t.p != nil && t.p.ranges == nil {
		t.emptyUpTo(t.p.lay.segments(), st)
	}
	if c := t.cand; c != nil {
		c.close("", st)
	}
}

// finish runs at the end of a round that completed: it lays the tenant out
// again if it must, else corrects the backend's digest of the segments
// listed whole.
func (t *segTrack) finish(ctx context.Context) error {
	e := t.e
	if t.cand != nil && (t.p == nil || t.oversize) {
		return e.relayout(ctx, t.tenant, t.p, t.cand)
	}
	if t.oversize {
		e.dig.mu.Lock()
		e.dig.tenant(t.tenant).forceFull = true
		e.dig.mu.Unlock()
	}
	if t.p == nil || len(t.listed) == 0 {
		return e.PublishDigests(ctx)
	}
	return e.correct(ctx, t.tenant, t.p, t.listed)
}

// correct makes the backend's digest of each segment in listed equal to
// the digest the round listed there, through this node's delta: when no
// node's delta for the segment changed since the round read them (other
// than this node's, which knows its writes: a segment this node wrote to
// is left), the listing saw every write the digest holds, and the
// difference is a write whose delta was lost (a crash before its publish),
// a damaged delta, or the poison a relayout left.
func (e *Engine) correct(ctx context.Context, tenant string, p *digestPlan, listed map[int]uint64) error {
	if err := e.publish(ctx, tenant, nil); err != nil {
		return err
	}
	after, own, _, err := e.backendDigest(ctx, tenant, p.lay)
	if err != nil {
		return err
	}
	if own == nil {
		own = make([]uint64, len(after))
	}
	d := &e.dig
	d.mu.Lock()
	td := d.tenants[tenant]
	if td == nil || td.lay != p.lay {
		d.mu.Unlock()
		return nil // laid out again meanwhile
	}
	touched := slices.Clone(td.touched)
	d.mu.Unlock()
	fix := make([]uint64, len(after))
	need := false
	for i, lst := range listed {
		if after[i] == lst || touched[i] != p.touched[i] || after[i]^own[i] != p.before[i]^p.own[i] {
			continue
		}
		fix[i], need = after[i]^lst, true
	}
	if !need {
		return nil
	}
	return e.publish(ctx, tenant, fix)
}

// relayout writes a new layout cut from cand (generation one above p's, or
// 1) and this node's delta for it: the listed digests, poisoned where the
// listing saw something change. Another node laying the tenant out at the
// same time wins or loses the conditional write; the loser keeps the old
// layout until its next round reads the new one.
func (e *Engine) relayout(ctx context.Context, tenant string, p *digestPlan, cand *cutLayout) error {
	d := &e.dig
	lay := &layout{gen: 1, bounds: cand.bounds}
	pre := backend.Precondition{IfNoneMatch: true}
	d.mu.Lock()
	if td := d.tenants[tenant]; p != nil && td != nil && td.lay == p.lay {
		lay.gen, pre = p.lay.gen+1, backend.Precondition{IfMatch: td.layETag}
	}
	d.mu.Unlock()
	if p == nil {
		// A layout that cannot be decoded is replaced; a missing one is
		// created (if-none-match fails if another node made one first).
		g, err := call(ctx, e, backend.OpGetBlob, func(ctx context.Context) (string, error) {
			_, etag, err := d.bl.GetBlob(ctx, layoutBlob(tenant))
			return etag, err
		})
		switch {
		case err == nil:
			pre = backend.Precondition{IfMatch: g}
		case fault.ClassOf(err) != fault.NotFound:
			return e.unavailable(err)
		}
	}
	etag, err := call(ctx, e, backend.OpPutBlob, func(ctx context.Context) (string, error) {
		return d.bl.PutBlob(ctx, layoutBlob(tenant), encodeLayout(lay), pre)
	})
	if fault.ClassOf(err) == fault.PreconditionFailed {
		return nil // another node laid it out: the next round reads it
	}
	if err != nil {
		return e.unavailable(err)
	}
	d.mu.Lock()
	td := d.tenant(tenant)
	td.early = nil // the listing saw those writes
	td.use(lay, etag)
	td.forceFull = false
	d.mu.Unlock()
	fix := slices.Clone(cand.segs)
	for i, u := range cand.unsure {
		if u {
			fix[i] ^= poison
		}
	}
	return e.publish(ctx, tenant, fix)
}
