package reconcile

import (
	"context"
	"errors"
	"maps"
	"slices"
)

// The feed and catch-up packs (docs/design/replication.md, "Catch-up
// packs"). A pack's manifest records, per node, the feed cursor its state
// includes; a node that restored the pack replays every feed after those
// cursors, and when every replay reached back (no gap) the tenant's
// catch-up ends with a digest round, listing only the key ranges whose
// digests differ, instead of a round listing every object.

// packCursors returns the feed cursors a pack of tenant about to be listed
// may claim: this node's last published seq and the cursor of every peer
// it reads; nil when the feed is off (the pack then claims nothing). It
// must be called before the pack lists the store: it waits for every key
// of the tenant held in the in-flight set to be released, since a write
// announced by a published object (or applied from a peer's) is noted
// while its key is held and its base is recorded before the key is
// released. So every entry up to a cursor is in the store, or superseded,
// when the listing starts.
func (f *feed) packCursors(ctx context.Context, tenant string) (map[string]uint64, error) {
	if f == nil {
		return nil, nil
	}
	ft, err := f.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	cur := maps.Clone(ft.state.cursors)
	if cur == nil {
		cur = map[string]uint64{}
	}
	if ft.state.seq > 0 {
		cur[f.self] = ft.state.seq
	}
	f.mu.Unlock()
	if err := f.e.inflight.Settle(ctx, tenant); err != nil {
		return nil, err
	}
	return cur, nil
}

// replay brings tenant, just restored from a pack whose manifest claims
// the cursors from, up to the head of every node's feed: each node named
// there, each peer found by listing, and this node's own feed (a node
// rebuilt under its id lost what it wrote after the pack), a node without
// a claimed cursor from its first object. It reports whether every feed
// was read without a gap; then the peers' cursors are where the replay
// ended and the tenant's pending fallback is over. On a gap the fallback
// stays (the tenant's catch-up round must then list every object, as
// without a pack); an error leaves it too. It runs on Run's goroutine,
// before the tenant's first round, while the tailer leaves the tenant
// alone: the tailer does not read a catching-up tenant's feeds while a
// fallback is pending, and replay makes sure one is.
func (f *feed) replay(ctx context.Context, tenant string, from map[string]uint64) (bool, error) {
	ft, err := f.load(ctx, tenant)
	if err != nil {
		return false, err
	}
	if err := f.discover(ctx, tenant, ft); err != nil {
		return false, err
	}
	f.mu.Lock()
	pending := ft.gap != nil
	f.mu.Unlock()
	if !pending {
		if err := f.probe(ctx, tenant, ft, "catching up: replaying the feeds after the pack"); err != nil {
			return false, err
		}
	}
	f.mu.Lock()
	nodes := slices.Sorted(maps.Keys(ft.peers))
	for n := range from {
		if !ft.peers[n] && n != f.self {
			nodes = append(nodes, n)
		}
	}
	nodes = append(nodes, f.self)
	for _, n := range nodes {
		ft.state.cursors[n] = max(ft.state.cursors[n], from[n])
	}
	f.mu.Unlock()
	g := f.e.feedGuard(tenant) // a restore catches up: it passes
	g.replay = true
	ok := true
	for _, n := range nodes {
		if ok, err = f.replayNode(ctx, tenant, ft, n, g); err != nil || !ok {
			break
		}
	}
	f.mu.Lock()
	delete(ft.state.cursors, f.self) // a node reads no cursor of its own
	delete(ft.peer, f.self)
	if err == nil && ok {
		ft.gap = nil
	}
	f.mu.Unlock()
	if serr := f.save(tenant, ft); err == nil {
		err = serr
	}
	return ok && err == nil, err
}

// replayNode reads node's feed of tenant from its cursor to its end, as
// many polls' worth as there are; false on a gap (or a guard stop).
func (f *feed) replayNode(ctx context.Context, tenant string, ft *feedTenant, node string, g *round) (bool, error) {
	for {
		f.mu.Lock()
		before := ft.state.cursors[node]
		f.mu.Unlock()
		reason, err := f.tailPeer(ctx, tenant, ft, node, g)
		if errors.Is(err, ErrNeedsConfirm) {
			reason, err = "the mass-deletion guard stopped the feed of "+peerName(node), nil
		}
		if err != nil || reason != "" {
			if l := f.e.cfg.Logger; l != nil && err == nil {
				l.InfoContext(ctx, "reconcile: the feed after the pack has a gap; the catch-up round lists every object",
					"backend", f.e.name, "tenant", tenant, "reason", reason)
			}
			return false, err
		}
		f.mu.Lock()
		after := ft.state.cursors[node]
		f.mu.Unlock()
		if after == before {
			return true, nil
		}
	}
}
