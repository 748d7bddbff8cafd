package reconcile

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/pack"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/store"
)

// Catch-up packs (docs/design/replication.md, "Catch-up packs"). After a
// round of a tenant completes, the engine writes a pack of it when the
// tenant holds at least Packs.MinDocs documents and the backend's newest
// complete pack of it is older than Packs.Every: the documents the node
// and the backend agree on (local version = base, with the base's ETag),
// in key order, streamed a part at a time, then the manifest. Writing runs
// on the engine's pack goroutine, off Run, and reads the store through
// listings, so it holds up neither writes nor rounds. An empty node
// restores a tenant from the newest complete pack (restore.go) before its
// first round.

// PackConfig configures catch-up packs.
type PackConfig struct {
	// Every is how old the newest complete pack of a tenant may grow
	// before a completed round writes a new one; 0 writes none (the engine
	// still restores from packs others wrote).
	Every time.Duration
	// MinDocs is the fewest documents (a completed round's scanned keys)
	// for which a pack is written; 0 means DefaultPackMinDocs.
	MinDocs int
	// PartSize is a part's size; 0 means DefaultPackPart.
	PartSize int
	// Keep is how long a superseded generation is kept after a newer one
	// completed, for a node still restoring from it; 0 means Every (and at
	// least DefaultPackKeep).
	Keep time.Duration
	// Parallel is how many parts a restore reads ahead; 0 means
	// DefaultPackParallel.
	Parallel int
	// MaxAge is the oldest a pack may be (by its manifest's Created) when
	// an empty node starts restoring from it; 0 means no bound. A document
	// deleted after the pack was written is in it, live, and once its
	// tombstone is collected (Collector's Grace) nothing says it was
	// deleted, so a restore from the pack would bring it back and upload it
	// to every node. So MaxAge must be below the grace by the longest a
	// restore may take, resumes after crashes included (the node uses
	// half the grace). An older pack is passed over and the round restores
	// object by object; a restore under way is resumed whatever its pack's
	// age.
	MaxAge time.Duration
}

// Defaults of PackConfig.
const (
	DefaultPackMinDocs  = 10_000
	DefaultPackPart     = 8 << 20
	DefaultPackKeep     = 10 * time.Minute
	DefaultPackParallel = 4
)

func (c *PackConfig) fill() {
	if c.MinDocs <= 0 {
		c.MinDocs = DefaultPackMinDocs
	}
	if c.PartSize <= 0 {
		c.PartSize = DefaultPackPart
	}
	if c.Keep <= 0 {
		c.Keep = max(c.Every, DefaultPackKeep)
	}
	if c.Parallel <= 0 {
		c.Parallel = DefaultPackParallel
	}
}

// generations lists tenant's pack generations, oldest first, and whether
// each is complete (has its manifest).
func (e *Engine) generations(ctx context.Context, bl backend.Blobs, tenant string) (gens []string, complete map[string]bool, err error) {
	complete = map[string]bool{}
	after := ""
	for {
		page, err := call(ctx, e, backend.OpListBlobs, func(ctx context.Context) (backend.Page, error) {
			return bl.ListBlobs(ctx, pack.Prefix(tenant), after, 0)
		})
		if err != nil {
			return nil, nil, e.unavailable(err)
		}
		for _, en := range page.Entries {
			gen, file, ok := pack.ParseName(tenant, en.Key)
			if !ok {
				continue
			}
			if len(gens) == 0 || gens[len(gens)-1] != gen {
				gens = append(gens, gen)
			}
			if file == "manifest" {
				complete[gen] = true
			}
		}
		if !page.More || len(page.Entries) == 0 {
			return gens, complete, nil
		}
		after = page.Entries[len(page.Entries)-1].Key
	}
}

// wantPack asks the pack goroutine to consider writing a pack of tenant,
// after one of its rounds completed having scanned n keys: all of the
// tenant's if whole, else (a round resumed from a cursor) those after the
// cursor only.
//
// A tenant of fewer than Packs.MinDocs keys, counted whole, gets no pack,
// and the packs it has (from when it was larger, or written by another
// node) go once they are Keep old (dropPacks): they hold the bodies of
// documents deleted since, which a newer pack would have let retention
// delete, and nothing writes one. Once it has none, the engine remembers
// that until the tenant reaches MinDocs, so small tenants cost no listing
// each round.
func (e *Engine) wantPack(tenant string, n int, whole bool) {
	if e.cfg.Packs.Every <= 0 {
		return
	}
	if _, ok := backend.BlobsOf(e.be); !ok {
		return
	}
	e.mu.Lock()
	switch {
	case n < e.cfg.Packs.MinDocs && !whole:
		e.mu.Unlock()
		return // too few to say the tenant is small
	case n < e.cfg.Packs.MinDocs:
		if e.packNone[tenant] {
			e.mu.Unlock()
			return
		}
		e.packDrop[tenant] = true
	default:
		delete(e.packNone, tenant)
		e.packWant[tenant] = true
	}
	e.mu.Unlock()
	select {
	case e.packKick <- struct{}{}:
	default:
	}
}

// packLoop is the pack goroutine: it writes the packs wantPack asked for,
// one at a time, until ctx ends. Run starts it and waits for it.
func (e *Engine) packLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.packKick:
		}
		e.mu.Lock()
		tenants := slices.Sorted(maps.Keys(e.packWant))
		drop := slices.Sorted(maps.Keys(e.packDrop))
		clear(e.packWant)
		clear(e.packDrop)
		e.mu.Unlock()
		for _, t := range drop {
			if err := e.dropPacks(ctx, t); err != nil && ctx.Err() == nil && e.cfg.Logger != nil {
				e.cfg.Logger.WarnContext(ctx, "reconcile: deleting the catch-up packs of a tenant below the pack minimum failed",
					"backend", e.name, "tenant", t, "class", fault.ClassOf(err).String(), "err", err)
			}
		}
		for _, t := range tenants {
			e.packTenant(ctx, t)
		}
	}
}

// packTenant writes tenant's pack if one is due (WritePack) and logs the
// outcome. A pack that failed (a full backend, say) is tried again only
// after Packs.Keep, not after every round: it would take and give back the
// backend's room meanwhile.
func (e *Engine) packTenant(ctx context.Context, t string) {
	if at, ok := e.packFailed[t]; ok && e.cfg.Now().Sub(at) < e.cfg.Packs.Keep {
		return
	}
	start := time.Now()
	m, err := e.WritePack(ctx, t, false)
	if err != nil && ctx.Err() == nil {
		e.packFailed[t] = e.cfg.Now()
	} else {
		delete(e.packFailed, t)
	}
	l := e.cfg.Logger
	switch {
	case l == nil || ctx.Err() != nil:
	case err != nil:
		l.WarnContext(ctx, "reconcile: writing a catch-up pack failed", "backend", e.name,
			"tenant", t, "class", fault.ClassOf(err).String(), "err", err, "tried_again_in", e.cfg.Packs.Keep)
	case m != nil:
		l.InfoContext(ctx, "reconcile: wrote a catch-up pack", "backend", e.name, "tenant", t,
			"generation", m.Generation, "docs", m.Docs, "parts", len(m.Parts), "bytes", m.Bytes,
			"duration", time.Since(start))
	}
}

// WritePack writes a pack of tenant to the backend unless (force false) a
// complete one younger than Packs.Every is there, then deletes the
// generations retention lets go (see pruneGenerations). It returns the
// manifest written, or nil when none was due. Outcomes: an error when the
// backend has no blobs (fault.Config), or from the store or a backend
// call. A generation left incomplete by an error is deleted at once (what
// it wrote must not take the room a full backend has for documents and the
// feed), or, when that fails too or the node is stopping, by a later
// writer's retention.
func (e *Engine) WritePack(ctx context.Context, tenant string, force bool) (*pack.Manifest, error) {
	bl, ok := backend.BlobsOf(e.be)
	if !ok {
		return nil, fault.New(fault.Config, fault.Context{Op: "reconcile.pack", Backend: e.name, Tenant: tenant}, "the backend cannot keep blobs")
	}
	gens, complete, err := e.generations(ctx, bl, tenant)
	if err != nil {
		return nil, err
	}
	now := e.cfg.Now()
	if newest := newestComplete(gens, complete); !force && newest != "" {
		if t, _ := pack.GenerationTime(newest); now.Sub(t) < e.cfg.Packs.Every {
			return nil, e.pruneGenerations(ctx, bl, tenant, gens, complete)
		}
	}
	gen := pack.NewGeneration(now, rand.Uint32())
	m, err := e.writeGeneration(ctx, bl, tenant, gen)
	if err != nil {
		if ctx.Err() == nil {
			if derr := e.deleteGeneration(ctx, bl, tenant, gen); derr != nil {
				err = fmt.Errorf("%w (deleting what it wrote failed too: %v)", err, derr)
			}
		}
		return nil, err
	}
	complete[m.Generation] = true
	return m, e.pruneGenerations(ctx, bl, tenant, append(gens, m.Generation), complete)
}

func newestComplete(gens []string, complete map[string]bool) string {
	for i := len(gens) - 1; i >= 0; i-- {
		if complete[gens[i]] {
			return gens[i]
		}
	}
	return ""
}

// writeGeneration streams tenant's in-sync documents into parts of gen,
// then its manifest (create-only). Memory is one part.
func (e *Engine) writeGeneration(ctx context.Context, bl backend.Blobs, tenant, gen string) (*pack.Manifest, error) {
	m := &pack.Manifest{Tenant: tenant, Generation: gen, Backend: e.name, Created: e.cfg.Now().UTC()}
	var err error
	if m.Feed, err = e.feed.packCursors(ctx, tenant); err != nil { // before the listing: see packCursors
		return nil, err
	}
	w := pack.NewPartWriter(e.cfg.Packs.PartSize)
	first := ""
	flush := func() error {
		if w.Len() == 0 {
			return nil
		}
		data := w.Finish()
		name := pack.PartName(tenant, gen, len(m.Parts)+1)
		if err := e.lim.charge(ctx, len(data)); err != nil {
			return err
		}
		if _, err := call(resilience.WithBulkTransfer(ctx), e, backend.OpPutBlob, func(ctx context.Context) (string, error) {
			return bl.PutBlob(ctx, name, data, backend.Precondition{})
		}); err != nil {
			return e.unavailable(err)
		}
		m.Parts = append(m.Parts, pack.Part{Name: pack.PartFile(len(m.Parts) + 1), Docs: w.Len(), Size: len(data), First: first, Last: w.LastKey()})
		m.Docs += int64(w.Len())
		m.Bytes += int64(len(data))
		w.Reset()
		return nil
	}
	for en, err := range e.inSync(ctx, tenant) {
		if err != nil {
			return nil, err
		}
		if w.Len() == 0 {
			first = en.Key
		}
		m.HLC = max(m.HLC, en.Version.HLC)
		full, err := w.Add(&en)
		if err != nil {
			return nil, err
		}
		if full {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	data, err := m.Encode()
	if err != nil {
		return nil, err
	}
	if _, err := call(ctx, e, backend.OpPutBlob, func(ctx context.Context) (string, error) {
		return bl.PutBlob(ctx, pack.ManifestName(tenant, gen), data, backend.Precondition{IfNoneMatch: true})
	}); err != nil {
		return nil, e.unavailable(err)
	}
	return m, nil
}

// inSync yields tenant's documents (tombstones included) whose local
// version is the base last synced with the backend, with the base's ETag:
// a merge-join of the store's listing and the sync states. The two are
// separate snapshots, so a key written between them shows different
// versions on the two sides and is left out (the round after a restore
// fetches it).
func (e *Engine) inSync(ctx context.Context, tenant string) iter.Seq2[pack.Entry, error] {
	return func(yield func(pack.Entry, error) bool) {
		next, stop := iter.Pull2(e.st.ListSyncState(ctx, e.name, tenant, ""))
		defer stop()
		base, berr, more := next()
		for rec, err := range e.st.List(ctx, tenant, store.ListOptions{Tombstones: true}) {
			if err != nil {
				yield(pack.Entry{}, err)
				return
			}
			for more && berr == nil && base.Key < rec.Key {
				base, berr, more = next()
			}
			if berr != nil {
				yield(pack.Entry{}, berr)
				return
			}
			if !more {
				return
			}
			if base.Key != rec.Key || base.RemoteETag == "" || base.Base.ID() != rec.Version.ID() {
				continue
			}
			if !yield(pack.Entry{Key: rec.Key, Version: rec.Version, ETag: base.RemoteETag, Body: rec.Body}, nil) {
				return
			}
		}
	}
}

// dropPacks deletes every generation of tenant, a tenant below
// Packs.MinDocs, that is at least Packs.Keep old, as retention deletes a
// superseded one. A node restoring from a generation deleted under it
// finds a part gone and goes on by its round (errPackGone); the tenant is
// small. When none is left, wantPack stops asking until the tenant
// reaches MinDocs again.
func (e *Engine) dropPacks(ctx context.Context, tenant string) error {
	bl, ok := backend.BlobsOf(e.be)
	if !ok {
		return nil
	}
	gens, _, err := e.generations(ctx, bl, tenant)
	if err != nil {
		return err
	}
	now, left, dropped := e.cfg.Now(), 0, 0
	var errs []error
	for _, g := range gens {
		if t, ok := pack.GenerationTime(g); ok && now.Sub(t) < e.cfg.Packs.Keep {
			left++
			continue
		}
		if err := e.deleteGeneration(ctx, bl, tenant, g); err != nil {
			errs = append(errs, err)
			left++
			continue
		}
		dropped++
	}
	if dropped > 0 && e.cfg.Logger != nil {
		e.cfg.Logger.InfoContext(ctx, "reconcile: deleted the catch-up packs of a tenant below the pack minimum",
			"backend", e.name, "tenant", tenant, "generations", dropped)
	}
	if left == 0 {
		e.mu.Lock()
		e.packNone[tenant] = true
		e.mu.Unlock()
	}
	return errors.Join(errs...)
}

// pruneGenerations deletes what retention lets go: every generation,
// complete or not, older than the newest complete generation that has
// existed for Packs.Keep, which superseded them at least that long ago.
// That one stays, and so does every newer one: a node may still be
// restoring from a generation superseded less than Keep ago. A node still
// restoring from a deleted one finds a part missing and starts over from
// the newest (restore.go). gens is in ascending order.
func (e *Engine) pruneGenerations(ctx context.Context, bl backend.Blobs, tenant string, gens []string, complete map[string]bool) error {
	now := e.cfg.Now()
	settled := ""
	for i := len(gens) - 1; i >= 0 && settled == ""; i-- {
		if t, ok := pack.GenerationTime(gens[i]); ok && complete[gens[i]] && now.Sub(t) >= e.cfg.Packs.Keep {
			settled = gens[i]
		}
	}
	if settled == "" {
		return nil
	}
	var errs []error
	for _, g := range gens {
		if g >= settled {
			break
		}
		errs = append(errs, e.deleteGeneration(ctx, bl, tenant, g))
	}
	return errors.Join(errs...)
}

// deleteGeneration deletes gen's manifest first (so no reader starts on
// it), then its parts.
func (e *Engine) deleteGeneration(ctx context.Context, bl backend.Blobs, tenant, gen string) error {
	del := func(name string) error {
		_, err := call(ctx, e, backend.OpDeleteBlob, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, bl.DeleteBlob(ctx, name, backend.Precondition{})
		})
		return e.unavailable(err)
	}
	if err := del(pack.ManifestName(tenant, gen)); err != nil {
		return err
	}
	prefix := pack.Prefix(tenant) + gen + "/"
	for {
		page, err := call(ctx, e, backend.OpListBlobs, func(ctx context.Context) (backend.Page, error) {
			return bl.ListBlobs(ctx, prefix, "", 0)
		})
		if err != nil {
			return e.unavailable(err)
		}
		for _, en := range page.Entries {
			if err := del(en.Key); err != nil {
				return err
			}
		}
		if !page.More || len(page.Entries) == 0 {
			return nil
		}
	}
}

// errPackGone: a part of the generation being restored is missing
// (retention deleted it): the restore starts over from the newest.
var errPackGone = errors.New("reconcile: the pack being restored was deleted")

func packErr(tenant, gen string, err error) error {
	return fmt.Errorf("reconcile: pack %s of tenant %s: %w", gen, tenant, err)
}
