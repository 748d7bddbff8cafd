package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/pack"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/store"
)

// Restoring from a catch-up pack. A tenant that is catching up, of which
// the store holds nothing and whose round has not started, is first
// restored from the newest complete pack of it in the backend: its parts
// are read a few at a time (Packs.Parallel ahead of the one applied) and
// applied in order, a store batch (ApplyBatch) of applyBatch entries at a
// time, each entry an Apply expecting no local version and recording the
// pack's version and ETag as the base, so nothing restored is uploaded
// again. The checkpoint records the generation and the next part after
// each part, so a restore interrupted by a crash resumes at the part it
// was in (the entries of it already applied fail their compare-and-set
// and are skipped). Then the feeds after the manifest's cursors are
// replayed (feedreplay.go), and the tenant's round follows: a digest round
// when every feed reached back, else one listing every object; either
// finds the restored keys in sync without reading them (their ETags match
// their bases) and fetches whatever changed since the pack was written;
// the tenant stops catching up when that round completes.

// A store batch of a restore applies up to applyBatch entries, and stops
// taking more once their bodies reach applyBytes: the store copies each
// body it is handed, so the batch's bytes are held twice until it commits.
// Up to applyAhead batches are in the store at once, so that the next
// batch is prepared (its bodies hashed, its keys' versions read) and
// staged while the store commits the one before: the store overlaps
// staging a group with committing the previous one only when both are
// queued.
const (
	applyBatch = 1024
	applyBytes = 4 << 20
	applyAhead = 2
)

// RestoreStats is what a restore from a pack did.
type RestoreStats struct {
	Generation string
	Parts      int   // parts applied by this call
	Applied    int   // entries installed
	Skipped    int   // entries whose key the store held already
	Bytes      int64 // part bytes read
	// Replayed: every feed after the pack's cursors was read and applied
	// without a gap, so the catch-up round compares digests rather than
	// listing every object.
	Replayed bool
	Duration time.Duration
}

// restoreWanted reports whether tenant is to be restored from a pack now
// (see above), and its checkpoint.
func (e *Engine) restoreWanted(ctx context.Context, tenant string) (bool, checkpoint, error) {
	if _, ok := backend.BlobsOf(e.be); !ok || !e.CatchingUp(tenant) {
		return false, checkpoint{}, nil
	}
	cp, err := e.loadCheckpoint(tenant)
	if err != nil || cp.packDone || cp.caughtUp {
		return false, cp, err
	}
	if cp.packGen != "" {
		return true, cp, nil // resume
	}
	if cp.cursor != "" {
		return false, cp, nil // a round is under way: let it finish
	}
	// A store that held rows of the tenant when the engine started has a
	// copy for the round to bring up to date; what clients wrote or read
	// through since does not make one.
	return !e.heldAtStart[tenant], cp, nil
}

// RestoreClaims is one node's Config.RestoreClaim over its engines: the
// first backend to ask restores a tenant from its pack, the others do
// not, unless its restore applied no pack. Engines run at once, so the
// choice is made here, under a lock, not from their checkpoints. The zero
// value is ready.
type RestoreClaims struct {
	mu sync.Mutex
	by map[string]string // tenant → the backend that restores it, or did
}

// For is backend's Config.RestoreClaim.
func (c *RestoreClaims) For(backend string) func(tenant string) (func(applied bool), bool) {
	return func(tenant string) (func(bool), bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if by, ok := c.by[tenant]; ok && by != backend {
			return nil, false
		}
		if c.by == nil {
			c.by = map[string]string{}
		}
		c.by[tenant] = backend
		return func(applied bool) {
			if applied {
				return
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.by[tenant] == backend {
				delete(c.by, tenant)
			}
		}, true
	}
}

// Restore restores tenant from the newest complete pack if it is catching
// up with nothing local (or resumes a restore under way); it returns what
// it did, zero when there was nothing to do. Run calls it before a
// tenant's round; it must not run concurrently with the tenant's round.
// Errors: ErrBackendUnavailable; fault.Corruption for a damaged part or
// manifest (the restore is abandoned and the round fetches everything);
// the store's; ctx's. On an error but ctx's and a broken pack, the next
// call resumes at the part that failed.
func (e *Engine) Restore(ctx context.Context, tenant string) (RestoreStats, error) {
	start := time.Now()
	ok, cp, err := e.restoreWanted(ctx, tenant)
	if err != nil || !ok {
		return RestoreStats{}, err
	}
	var m *pack.Manifest
	if claim := e.cfg.RestoreClaim; claim != nil {
		done, ok := claim(tenant)
		if !ok {
			return RestoreStats{}, nil // another backend's pack makes the copy
		}
		defer func() { done(err == nil && m != nil) }()
	}
	bl, _ := backend.BlobsOf(e.be)
	// Shown as running while it runs: cairn reconcile status said "idle"
	// through a restore that took minutes.
	e.setProgress(tenant, func(p *Progress) { p.Running, p.Started, p.restored = true, e.cfg.Now(), 0 })
	defer e.setProgress(tenant, func(p *Progress) { p.Running = false })
	var st RestoreStats
	st, m, err = e.restore(ctx, bl, tenant, cp)
	if errors.Is(err, errPackGone) {
		// Retention removed the generation under us: start over from the
		// newest; what was applied stays and is skipped.
		cp.packGen, cp.packPart = "", 0
		var again RestoreStats
		again, m, err = e.restore(ctx, bl, tenant, cp)
		again.Applied, again.Skipped = again.Applied+st.Applied, again.Skipped+st.Skipped
		st = again
	}
	if err == nil && m != nil && m.Feed != nil && e.feed != nil {
		// The feeds after the pack, before the checkpoint says the
		// restore is done: a crash during the replay resumes the restore
		// at its end (nothing left to apply) and replays again.
		st.Replayed, err = e.feed.replay(ctx, tenant, m.Feed)
	}
	st.Duration = time.Since(start)
	switch {
	case err == nil, fault.ClassOf(err) == fault.Corruption, errors.Is(err, errPackGone):
		// Done, or a pack that cannot be used: the round does the rest.
		fed := err == nil && st.Replayed
		if uerr := e.updateCheckpoint(tenant, func(c *checkpoint) { c.packDone, c.fed, c.packGen, c.packPart = true, fed, "", 0 }); uerr != nil {
			return st, errors.Join(err, uerr)
		}
	}
	e.logRestore(ctx, tenant, &st, err)
	return st, err
}

func (e *Engine) logRestore(ctx context.Context, tenant string, st *RestoreStats, err error) {
	l := e.cfg.Logger
	if l == nil || (st.Generation == "" && err == nil) {
		return
	}
	if err != nil && ctx.Err() != nil {
		l.InfoContext(ctx, "reconcile: restore from a catch-up pack stopped; the next start goes on from its last part", "backend", e.name, "tenant", tenant,
			"generation", st.Generation, "applied", st.Applied)
		return
	}
	if err != nil {
		l.WarnContext(ctx, "reconcile: restore from a catch-up pack failed", "backend", e.name, "tenant", tenant,
			"generation", st.Generation, "applied", st.Applied, "class", fault.ClassOf(err).String(), "err", err)
		return
	}
	l.InfoContext(ctx, "reconcile: restored from a catch-up pack", "backend", e.name, "tenant", tenant,
		"generation", st.Generation, "parts", st.Parts, "applied", st.Applied, "skipped", st.Skipped,
		"bytes", st.Bytes, "feeds_replayed", st.Replayed, "duration", st.Duration)
}

// restore applies the parts of cp's generation from cp.packPart on (or of
// the newest complete one, from the first), and returns its manifest (nil
// when there is no pack).
func (e *Engine) restore(ctx context.Context, bl backend.Blobs, tenant string, cp checkpoint) (RestoreStats, *pack.Manifest, error) {
	gen, first := cp.packGen, cp.packPart
	if gen == "" {
		gens, complete, err := e.generations(ctx, bl, tenant)
		if err != nil {
			return RestoreStats{}, nil, err
		}
		if gen, first = newestComplete(gens, complete), 0; gen == "" {
			return RestoreStats{}, nil, nil // no pack: the round does it all
		}
	}
	st := RestoreStats{Generation: gen}
	data, err := e.getBlob(ctx, bl, pack.ManifestName(tenant, gen))
	if fault.ClassOf(err) == fault.NotFound {
		return st, nil, packErr(tenant, gen, errPackGone) // deleted since the checkpoint named it
	}
	if err != nil {
		return st, nil, err
	}
	m, err := pack.DecodeManifest(data)
	if err != nil {
		return st, nil, packErr(tenant, gen, err)
	}
	if m.Tenant != tenant || m.Generation != gen {
		return st, nil, fault.New(fault.Corruption, fault.Context{Op: "reconcile.restore", Backend: e.name, Tenant: tenant},
			fmt.Sprintf("manifest of %s/%s names %s/%s", tenant, gen, m.Tenant, m.Generation))
	}
	// Checked when a restore starts, not when it resumes: passing over a
	// pack half applied would leave its rows for the round to upload
	// (MaxAge leaves the restore time to finish; see PackConfig).
	if age := e.cfg.Now().Sub(m.Created); first == 0 && e.cfg.Packs.MaxAge > 0 && age > e.cfg.Packs.MaxAge {
		if l := e.cfg.Logger; l != nil {
			l.WarnContext(ctx, "reconcile: the newest catch-up pack is too old to restore from (older than half --gc-grace); the round restores every object instead",
				"backend", e.name, "tenant", tenant, "generation", gen, "age", age.Round(time.Second), "grace", e.cfg.Packs.MaxAge)
		}
		return RestoreStats{}, nil, nil
	}
	if err := e.updateCheckpoint(tenant, func(c *checkpoint) { c.packGen, c.packPart = gen, first }); err != nil {
		return st, nil, err
	}
	// Reads in flight when the restore stops are let finish, not
	// cancelled: a cancelled call counts as a success to the breaker
	// (see fanOut).
	stop := make(chan struct{})
	parts := e.fetchParts(ctx, stop, bl, tenant, m, first)
	defer func() {
		close(stop)
		for range parts { // let the fetchers finish and drop their parts
		}
	}()
	for i := first; i < len(m.Parts); i++ {
		f, ok := <-parts
		if !ok {
			// The reads stopped because ctx ended: the pack is not at
			// fault, and the restore resumes from this part next time.
			err := ctx.Err()
			if err == nil {
				err = errors.New("reconcile: the reads of the pack's parts stopped")
			}
			return st, nil, err
		}
		if f.err != nil {
			return st, nil, f.err
		}
		st.Bytes += int64(len(f.data))
		if err := e.applyPart(ctx, tenant, m, i, f.data, &st); err != nil {
			return st, m, err
		}
		st.Parts++
		if err := e.updateCheckpoint(tenant, func(c *checkpoint) { c.packPart = i + 1 }); err != nil {
			return st, nil, err
		}
		if fp := e.cfg.Failpoint; fp != nil {
			fp("reconcile.restore.part")
		}
	}
	return st, m, nil
}

type fetched struct {
	data []byte
	err  error
}

// fetchParts reads parts first.. of m with Packs.Parallel reads in flight
// and delivers them in order on the returned channel, which it closes
// after the last (or when ctx ends or stop is closed, once the reads in
// flight are done). At most Parallel parts wait for the applier: the
// channel's buffer and the reads in flight are bounded by it.
func (e *Engine) fetchParts(ctx context.Context, stop <-chan struct{}, bl backend.Blobs, tenant string, m *pack.Manifest, first int) <-chan fetched {
	out := make(chan fetched)
	n := e.cfg.Packs.Parallel
	slots := make(chan chan fetched, n) // in part order; each is filled once
	go func() {
		defer close(slots)
		for i := first; i < len(m.Parts); i++ {
			ch := make(chan fetched, 1)
			select {
			case slots <- ch:
			case <-ctx.Done():
				return
			case <-stop:
				return
			}
			go func(i int) {
				// A part is megabytes: its attempt may take longer (a slow
				// link never got one across in the attempt timeout).
				data, err := e.getBlob(resilience.WithBulkTransfer(ctx), bl, pack.PartName(tenant, m.Generation, i+1))
				if fault.ClassOf(err) == fault.NotFound {
					err = packErr(tenant, m.Generation, errPackGone)
				}
				ch <- fetched{data, err}
			}(i)
		}
	}()
	go func() {
		defer close(out)
		for ch := range slots {
			f := <-ch
			select {
			case out <- f:
			case <-ctx.Done():
			case <-stop:
			}
		}
	}()
	return out
}

func (e *Engine) getBlob(ctx context.Context, bl backend.Blobs, name string) ([]byte, error) {
	data, err := call(ctx, e, backend.OpGetBlob, func(ctx context.Context) ([]byte, error) {
		b, _, err := bl.GetBlob(ctx, name)
		return b, err
	})
	if err != nil {
		return nil, e.unavailable(err)
	}
	return data, e.lim.charge(ctx, len(data))
}

// applyPart applies part i of m, a store batch at a time with up to
// applyAhead batches in flight, each key held in the in-flight set while
// its batch is applied. It returns once every batch it started is done.
func (e *Engine) applyPart(ctx context.Context, tenant string, m *pack.Manifest, i int, data []byte, st *RestoreStats) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards st and first
		first error
		slots = make(chan struct{}, applyAhead)
	)
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return first
	}
	// The items point into bases: both are made for one batch and never
	// grow past applyBatch, so the pointers hold.
	items := make([]store.ApplyItem, 0, applyBatch)
	bases := make([]store.SyncUpdate, 0, applyBatch)
	n, size := 0, 0
	flush := func() error {
		if len(items) == 0 {
			return nil
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if err := failed(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := items
		wg.Go(func() {
			defer func() { <-slots }()
			err := e.applyBatch(ctx, tenant, m, batch, st, &mu)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		})
		items = make([]store.ApplyItem, 0, applyBatch)
		bases = make([]store.SyncUpdate, 0, applyBatch)
		size = 0
		return nil
	}
	err := pack.DecodePart(data, func(en *pack.Entry) error {
		n++
		v := en.Version
		bases = append(bases, store.SyncUpdate{Backend: e.name, State: e.newBase(tenant, &v, en.ETag, en.Body)})
		items = append(items, store.ApplyItem{Key: en.Key, Version: v, Body: en.Body, Expect: doc.ID{}, Sync: &bases[len(bases)-1]})
		if size += len(en.Body); len(items) == applyBatch || size >= applyBytes {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	wg.Wait()
	if ferr := failed(); ferr != nil {
		err = ferr // the batch's error, not the cancellation it caused
	}
	if err == nil && n != m.Parts[i].Docs {
		err = fault.New(fault.Corruption, fault.Context{Op: "reconcile.restore", Backend: e.name, Tenant: tenant},
			fmt.Sprintf("part %d holds %d entries, its manifest says %d", i+1, n, m.Parts[i].Docs))
	}
	if pack.Corrupt(err) {
		return packErr(tenant, m.Generation, err)
	}
	return err
}

// applyBatch applies one store batch of a restore, its keys held in the
// in-flight set, and counts the outcome in st (under mu).
func (e *Engine) applyBatch(ctx context.Context, tenant string, m *pack.Manifest, items []store.ApplyItem, st *RestoreStats, mu *sync.Mutex) error {
	releases := make([]func(), 0, len(items))
	defer func() {
		for _, r := range releases {
			r()
		}
	}()
	for _, it := range items {
		r, err := e.inflight.Acquire(ctx, tenant, it.Key)
		if err != nil {
			return err
		}
		releases = append(releases, r)
	}
	errs, err := e.st.ApplyBatch(ctx, tenant, items)
	if fault.ClassOf(err) == fault.Invalid {
		// A body that does not match its version: a pack writer's bug
		// or damage the checksum missed; the pack cannot be trusted.
		return packErr(tenant, m.Generation, fault.E(fault.Corruption, fault.Context{Op: "reconcile.restore", Backend: e.name, Tenant: tenant}, err))
	}
	if err != nil {
		return err
	}
	var down int64
	applied, skipped := 0, 0
	for j, err := range errs {
		switch {
		case err == nil:
			applied++
			down += int64(len(items[j].Body))
		case fault.ClassOf(err) == fault.PreconditionFailed:
			skipped++ // the store holds the key: the round decides it
		default:
			return err
		}
	}
	mu.Lock()
	st.Applied += applied
	st.Skipped += skipped
	shown := st.Applied
	mu.Unlock()
	// A restore is a catch-up too: `cairn reconcile status` shows what it
	// wrote as downloaded.
	e.setProgress(tenant, func(p *Progress) { p.restored = max(p.restored, shown) })
	if o := e.cfg.Observer; o != nil && down > 0 {
		o.ReconcileBytes(e.name, 0, down)
	}
	return nil
}
