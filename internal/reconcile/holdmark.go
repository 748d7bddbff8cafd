package reconcile

import (
	"context"
	"encoding/hex"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
)

// Hold markers. While the mass-deletion guard holds a tenant on a node,
// the node keeps a blob "holds/TENANT/NODE" (the node id in hex) in the
// backend, written again at each stop. The collectors of every node
// sharing the backend keep the tenant's tombstones while a marker is
// younger than their grace: were they collected, the held node would read
// each held deletion as a document the backend lost, and its rounds would
// upload its copy back over it, undoing on every node deletions nobody
// confirmed. A marker older than the grace is disregarded: its node has
// not run a round for that long, and is treated as a node partitioned
// that long (runbook 12).

// holdMagic begins a marker's bytes, followed by the time it was written
// (RFC 3339).
const holdMagic = "cairn-hold 1 "

func holdPrefix(tenant string) string { return "holds/" + tenant + "/" }

// markHold writes this node's hold marker of tenant (on) or removes it.
// A failure is logged and left: the next stop writes the marker again, and
// a marker left behind after the hold is disregarded once older than the
// grace.
func (e *Engine) markHold(ctx context.Context, tenant string, on bool) {
	bl, ok := backend.BlobsOf(e.be)
	node := nodeHex(e.st.Identity().NodeID)
	if !ok || node == "" || len(node) > backend.MaxBlobSegment {
		return
	}
	name := holdPrefix(tenant) + node
	var err error
	if on {
		now := e.cfg.Now()
		data := []byte(holdMagic + now.UTC().Format(time.RFC3339Nano))
		_, err = call(ctx, e, backend.OpPutBlob, func(ctx context.Context) (string, error) {
			return bl.PutBlob(ctx, name, data, backend.Precondition{})
		})
		if err == nil {
			e.mu.Lock()
			e.marked[tenant] = now
			e.mu.Unlock()
		}
	} else {
		_, err = call(ctx, e, backend.OpDeleteBlob, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, bl.DeleteBlob(ctx, name, backend.Precondition{})
		})
	}
	if err != nil && ctx.Err() == nil {
		e.warnRepeated(ctx, "hold marker "+tenant, "reconcile: the mass-deletion guard's hold marker could not be written",
			"backend", e.name, "tenant", tenant, "held", on, "err", err)
	}
}

// refreshHold writes tenant's hold marker again if the tenant is held and
// the marker was last written more than a tenth of the grace ago: a held
// node whose rounds are slow (a slow link, a large tenant) meets no stop
// for a while, and its marker must not age past the grace meanwhile.
func (e *Engine) refreshHold(ctx context.Context, tenant string) {
	grace := e.cfg.TombstoneGrace
	if grace <= 0 {
		grace = DefaultGrace
	}
	e.mu.Lock()
	last := e.marked[tenant]
	e.mu.Unlock()
	if e.cfg.Now().Sub(last) < grace/10 {
		return
	}
	e.holdMu.Lock()
	defer e.holdMu.Unlock()
	if held, err := e.held(tenant); err == nil && held {
		e.markHold(ctx, tenant, true)
	}
}

// heldBy returns the id of a node whose hold marker of tenant in e's
// backend is younger than grace at now (the collector's clock), or "". A
// marker older than that is removed, unless written again meanwhile: its
// node's hold ended without removing it (a failed delete, a crash), or
// the node is gone.
func (e *Engine) heldBy(ctx context.Context, tenant string, grace time.Duration, now time.Time) (string, error) {
	bl, ok := backend.BlobsOf(e.be)
	if !ok {
		return "", nil
	}
	prefix := holdPrefix(tenant)
	page, err := call(ctx, e, backend.OpListBlobs, func(ctx context.Context) (backend.Page, error) {
		return bl.ListBlobs(ctx, prefix, "", 0)
	})
	if err != nil {
		return "", err
	}
	for _, ent := range page.Entries {
		data, err := call(ctx, e, backend.OpGetBlob, func(ctx context.Context) ([]byte, error) {
			data, _, err := bl.GetBlob(ctx, ent.Key)
			return data, err
		})
		switch {
		case fault.ClassOf(err) == fault.NotFound:
			continue // removed since the listing: the hold ended
		case err != nil:
			return "", err
		}
		at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(string(data), holdMagic))
		if !strings.HasPrefix(string(data), holdMagic) || err != nil {
			continue // not a marker: nothing a node wrote holds the tenant
		}
		if now.Sub(at) < grace {
			node := strings.TrimPrefix(ent.Key, prefix)
			if b, err := hex.DecodeString(node); err == nil {
				node = string(b)
			}
			return node, nil
		}
		e.warnRepeated(ctx, "stale hold "+tenant, "reconcile: a node's mass-deletion hold marker is older than the grace: the tenant's tombstones are collected, and that node, back, would undo the deletions it held",
			"backend", e.name, "tenant", tenant, "marker", ent.Key, "written", at, "runbook", "Tombstones not collected, or a delete undone")
		_, _ = call(ctx, e, backend.OpDeleteBlob, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, bl.DeleteBlob(ctx, ent.Key, backend.Precondition{IfMatch: ent.ETag})
		})
	}
	return "", nil
}
