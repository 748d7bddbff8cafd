package reconcile

import (
	"bytes"
	"context"
	"iter"
	"slices"
	"sync"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
)

// poison is XORed into a segment's published digest to make every node
// list the segment: a value no XOR of entry hashes is expected to cancel.
const poison uint64 = 0x9e3779b97f4a7c15

// digests is an engine's view of its tenants' digests in one backend.
type digests struct {
	bl  backend.Blobs // nil: the backend keeps no blobs, rounds list everything
	pub sync.Mutex
	// pub serialises publishing (it reads and writes the node's delta
	// blob); taken before mu.

	mu      sync.Mutex // guards tenants and every tenantDigest
	tenants map[string]*tenantDigest
}

// tenantDigest is one tenant's layout and this node's delta for it.
type tenantDigest struct {
	lay       *layout
	layETag   string
	own       []uint64 // this node's published delta; valid when ownKnown
	ownETag   string   // "" : no blob yet
	ownKnown  bool
	pending   []uint64   // written, not yet published
	early     []keyDelta // written before any layout was known (bounded by maxEarly)
	touched   []uint64   // writes per segment, for corrections
	forceFull bool       // a segment outgrew the layout: the next round lists everything
}

// keyDelta is one write's change to its segment's digest, kept until the
// segment is known.
type keyDelta struct {
	key string
	x   uint64
}

// maxEarly bounds the writes kept before a tenant's layout is known; past
// it they are dropped, and the node's next round corrects their segments.
const maxEarly = 1 << 16

func (d *digests) tenant(t string) *tenantDigest {
	td := d.tenants[t]
	if td == nil {
		td = &tenantDigest{}
		d.tenants[t] = td
	}
	return td
}

// use makes lay (with its ETag) the tenant's layout, forgetting what was
// kept for another generation.
func (td *tenantDigest) use(lay *layout, etag string) {
	if td.lay != nil && td.lay.gen == lay.gen && slices.Equal(td.lay.bounds, lay.bounds) {
		td.layETag = etag
		return
	}
	n := lay.segments()
	early := td.early
	*td = tenantDigest{lay: lay, layETag: etag, pending: make([]uint64, n), touched: make([]uint64, n), forceFull: td.forceFull}
	for _, w := range early {
		i := lay.segment(w.key)
		td.pending[i] ^= w.x
		td.touched[i]++
	}
}

// wrote records that key's object went from oldETag ("" : none) to newETag
// ("" : removed) in this node's pending delta. Without a layout known yet
// it is kept until a round reads one (up to maxEarly writes; beyond, the
// node's next round finds its local digest differing from the backend's
// and corrects it, see correct).
func (e *Engine) wrote(tenant, key, oldETag, newETag string) {
	d := &e.dig
	if d.bl == nil {
		return
	}
	var x uint64
	if oldETag != "" {
		x ^= entryHash(key, oldETag)
	}
	if newETag != "" {
		x ^= entryHash(key, newETag)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	td := d.tenant(tenant)
	if td.lay == nil {
		// No layout read yet (the uploader ran before the tenant's first
		// round): keep the write for the layout the round reads.
		if len(td.early) < maxEarly {
			td.early = append(td.early, keyDelta{key, x})
		} else {
			td.early = nil
		}
		return
	}
	i := td.lay.segment(key)
	td.pending[i] ^= x
	td.touched[i]++
}

// PublishDigests writes every tenant's pending digest changes into this
// node's delta blob in the backend. Run calls it after each turn; a node
// that stops before calling it leaves the backend's digest behind its
// writes, which its next round finds and corrects.
func (e *Engine) PublishDigests(ctx context.Context) error {
	d := &e.dig
	if d.bl == nil {
		return nil
	}
	d.mu.Lock()
	var tenants []string
	for t, td := range d.tenants {
		if td.lay != nil && slices.ContainsFunc(td.pending, func(x uint64) bool { return x != 0 }) {
			tenants = append(tenants, t)
		}
	}
	d.mu.Unlock()
	var first error
	for _, t := range tenants {
		if err := e.publish(ctx, t, nil); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// publish adds tenant's pending changes, and fix (per segment, may be nil),
// to this node's delta blob, with a conditional write on the blob's ETag.
func (e *Engine) publish(ctx context.Context, tenant string, fix []uint64) error {
	d := &e.dig
	d.pub.Lock()
	defer d.pub.Unlock()
	d.mu.Lock()
	td := d.tenants[tenant]
	if td == nil || td.lay == nil {
		d.mu.Unlock()
		return nil
	}
	lay, pend := td.lay, slices.Clone(td.pending)
	clear(td.pending)
	known, own, ownETag := td.ownKnown, slices.Clone(td.own), td.ownETag
	d.mu.Unlock()
	restore := func() { // the writes are published next time; fix is dropped
		d.mu.Lock()
		defer d.mu.Unlock()
		if td.lay == lay {
			for i, x := range pend {
				td.pending[i] ^= x
			}
		}
	}
	add := slices.Clone(pend)
	for i, x := range fix {
		add[i] ^= x
	}
	if !slices.ContainsFunc(add, func(x uint64) bool { return x != 0 }) {
		restore() // nothing to write (writes that cancelled out stay cancelled)
		return nil
	}
	name := deltaBlob(tenant, lay.gen, e.st.Identity().NodeID)
	for attempt := 0; ; attempt++ {
		if !known {
			var err error
			if own, ownETag, err = e.readDelta(ctx, name, lay); err != nil {
				restore()
				return err
			}
		}
		next := slices.Clone(own)
		for i, x := range add {
			next[i] ^= x
		}
		pre := backend.Precondition{IfNoneMatch: true}
		if ownETag != "" {
			pre = backend.Precondition{IfMatch: ownETag}
		}
		etag, err := call(ctx, e, backend.OpPutBlob, func(ctx context.Context) (string, error) {
			return d.bl.PutBlob(ctx, name, encodeDelta(lay.gen, next), pre)
		})
		if fault.ClassOf(err) == fault.PreconditionFailed && attempt == 0 {
			known = false // written elsewhere (this node before a restart): read it again
			continue
		}
		if err != nil {
			restore()
			return e.unavailable(err)
		}
		d.mu.Lock()
		if td.lay == lay {
			td.own, td.ownETag, td.ownKnown = next, etag, true
		}
		d.mu.Unlock()
		return nil
	}
}

// readDelta reads a node's delta blob: zeros when there is none, or when
// it is damaged or of another layout (it is then replaced, and the rounds
// correct what it held).
func (e *Engine) readDelta(ctx context.Context, name string, lay *layout) ([]uint64, string, error) {
	type got struct {
		data []byte
		etag string
	}
	g, err := call(ctx, e, backend.OpGetBlob, func(ctx context.Context) (got, error) {
		data, etag, err := e.dig.bl.GetBlob(ctx, name)
		return got{data, etag}, err
	})
	switch {
	case fault.ClassOf(err) == fault.NotFound:
		return make([]uint64, lay.segments()), "", nil
	case err != nil:
		return nil, "", e.unavailable(err)
	}
	gen, segs, derr := decodeDelta(g.data)
	if derr != nil || gen != lay.gen || len(segs) != lay.segments() {
		return make([]uint64, lay.segments()), g.etag, nil
	}
	return segs, g.etag, nil
}

// digestPlan is what a round knows of the tenant's digests: the layout,
// the backend's digest and this node's share of it when the round started,
// and the segments the round lists (nil: all of them).
type digestPlan struct {
	lay     *layout
	before  []uint64 // the backend's digest: the XOR of every node's delta
	own     []uint64 // this node's delta within before
	touched []uint64 // td.touched when before was read
	ranges  []int    // segments to list, ascending; nil for a full round
	size    int      // the tenant's bases, counted by the compare (ranges set)
}

// plan reads tenant's layout and digests from the backend and compares
// them with the local digest. It returns nil when the round must list
// everything without a layout (no blobs, no layout yet, or it cannot be
// read), and a plan with ranges nil when it must list everything with one
// (full is true, or the layout is to be replaced).
func (e *Engine) plan(ctx context.Context, tenant string, full bool) (*digestPlan, error) {
	d := &e.dig
	if d.bl == nil {
		return nil, nil
	}
	type got struct {
		data []byte
		etag string
	}
	g, err := call(ctx, e, backend.OpGetBlob, func(ctx context.Context) (got, error) {
		data, etag, err := d.bl.GetBlob(ctx, layoutBlob(tenant))
		return got{data, etag}, err
	})
	if fault.ClassOf(err) == fault.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, e.unavailable(err)
	}
	lay, derr := decodeLayout(g.data)
	if derr != nil {
		return nil, nil // a full round lays the tenant out again over it
	}
	d.mu.Lock()
	td := d.tenant(tenant)
	td.use(lay, g.etag)
	lay = td.lay // the one kept, if the same
	full = full || td.forceFull
	td.forceFull = false
	d.mu.Unlock()
	// The node's own writes go into the backend's digest first, so that
	// they do not make their segments differ.
	if err := e.publish(ctx, tenant, nil); err != nil {
		return nil, err
	}
	before, own, ownETag, err := e.backendDigest(ctx, tenant, lay)
	if err != nil {
		return nil, err
	}
	p := &digestPlan{lay: lay, before: before, own: own}
	d.mu.Lock()
	p.touched = slices.Clone(td.touched)
	if own != nil && !slices.ContainsFunc(td.pending, func(x uint64) bool { return x != 0 }) {
		td.own, td.ownETag, td.ownKnown = own, ownETag, true
	}
	d.mu.Unlock()
	if p.own == nil {
		p.own = make([]uint64, lay.segments())
	}
	if full {
		return p, nil
	}
	local, dirty, grown, size, err := e.localDigest(ctx, tenant, lay)
	if err != nil {
		return nil, err
	}
	if grown {
		return p, nil // a segment outgrew the layout: list everything and lay it out again
	}
	p.ranges, p.size = []int{}, size
	for i := range local {
		if dirty[i] || local[i] != before[i] {
			p.ranges = append(p.ranges, i)
		}
	}
	return p, nil
}

// backendDigest reads every node's delta of lay's generation and returns
// their XOR, and this node's own delta (nil when it has none).
func (e *Engine) backendDigest(ctx context.Context, tenant string, lay *layout) (sum, own []uint64, ownETag string, err error) {
	sum = make([]uint64, lay.segments())
	prefix := deltaPrefix(tenant, lay.gen)
	mine := deltaBlob(tenant, lay.gen, e.st.Identity().NodeID)
	after := ""
	for {
		page, err := call(ctx, e, backend.OpListBlobs, func(ctx context.Context) (backend.Page, error) {
			return e.dig.bl.ListBlobs(ctx, prefix, after, 0)
		})
		if err != nil {
			return nil, nil, "", e.unavailable(err)
		}
		for _, ent := range page.Entries {
			segs, etag, err := e.readDelta(ctx, ent.Key, lay)
			if err != nil {
				return nil, nil, "", err
			}
			for i, x := range segs {
				sum[i] ^= x
			}
			if ent.Key == mine {
				own, ownETag = segs, etag
			}
			after = ent.Key
		}
		if !page.More || len(page.Entries) == 0 {
			return sum, own, ownETag, nil
		}
	}
}

// localDigest computes, from the store alone, the digest the backend
// should have if it holds what the bases say it does: per segment, the XOR
// of entryHash(key, base ETag) over the bases. A segment is dirty when a
// local document and its base disagree (a change not uploaded, a key
// without a base): the round must look at it whatever the digests say.
// grown reports a segment holding more bases than a relayout allows; size
// counts the keys a whole round would look at (the bases, and the local
// documents without one, such as a write whose upload is not recorded
// yet): the tenant's size for progress estimates and the pack trigger.
func (e *Engine) localDigest(ctx context.Context, tenant string, lay *layout) (sum []uint64, dirty []bool, grown bool, size int, err error) {
	sum, dirty = make([]uint64, lay.segments()), make([]bool, lay.segments())
	count := make([]int, lay.segments())
	locals, stop := iter.Pull2(e.st.List(ctx, tenant, store.ListOptions{Tombstones: true, KeysOnly: true, NoETag: true}))
	defer stop()
	lrec, lerr, lok := locals()
	for b, err := range e.st.ListSyncState(ctx, e.name, tenant, "") {
		if err != nil {
			return nil, nil, false, 0, err
		}
		for ; lok && lerr == nil && lrec.Key < b.Key; lrec, lerr, lok = locals() {
			dirty[lay.segment(lrec.Key)] = true // no base
			size++
		}
		if lerr != nil {
			return nil, nil, false, 0, lerr
		}
		i := lay.segment(b.Key)
		sum[i] ^= entryHash(b.Key, b.RemoteETag)
		size++
		if count[i]++; count[i] > relayoutFactor*segmentKeys {
			grown = true
		}
		if !lok || lrec.Key != b.Key {
			dirty[i] = true // a base without a local document
			continue
		}
		if !sameVersion(&lrec.Version, &b.Base) {
			dirty[i] = true
		}
		lrec, lerr, lok = locals()
	}
	for ; lok; lrec, lerr, lok = locals() {
		if lerr != nil {
			return nil, nil, false, 0, lerr
		}
		dirty[lay.segment(lrec.Key)] = true
		size++
	}
	return sum, dirty, grown, size, nil
}

// sameVersion reports whether a and b are one version. A version's ID is a
// hash of its encoding, so comparing the encodings answers as comparing
// the IDs would, without two SHA-256 sums for every key of the tenant.
func sameVersion(a, b *doc.Version) bool {
	var ba, bb [128]byte
	return bytes.Equal(a.AppendBinary(ba[:0]), b.AppendBinary(bb[:0]))
}
