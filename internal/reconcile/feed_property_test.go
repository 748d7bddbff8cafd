package reconcile

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
)

// feedLink is one node's link to the shared backend, blobs included: a
// partition cuts both.
type feedLink struct {
	*partitioned
	blobs *blobFake
}

func (l *feedLink) PutBlob(ctx context.Context, name string, data []byte, pre backend.Precondition) (string, error) {
	if err := l.cut(backend.OpPutBlob, name); err != nil {
		return "", err
	}
	return l.blobs.PutBlob(ctx, name, data, pre)
}

func (l *feedLink) GetBlob(ctx context.Context, name string) ([]byte, string, error) {
	if err := l.cut(backend.OpGetBlob, name); err != nil {
		return nil, "", err
	}
	return l.blobs.GetBlob(ctx, name)
}

func (l *feedLink) ListBlobs(ctx context.Context, prefix, after string, limit int) (backend.Page, error) {
	if err := l.cut(backend.OpListBlobs, ""); err != nil {
		return backend.Page{}, err
	}
	return l.blobs.ListBlobs(ctx, prefix, after, limit)
}

func (l *feedLink) DeleteBlob(ctx context.Context, name string, pre backend.Precondition) error {
	if err := l.cut(backend.OpDeleteBlob, name); err != nil {
		return err
	}
	return l.blobs.DeleteBlob(ctx, name, pre)
}

// TestPropertyFeedConvergence: three nodes share one backend and learn of
// each other's writes only through the feed (no anti-entropy round but
// those a gap falls back to). Random writes, deletes and concurrent
// updates of a few keys on random nodes; feed objects lost, delayed (and
// so seen out of order, after later ones), read twice (a cursor that
// went back, as after a crash before it was saved); nodes partitioned
// and healed. After healing, and one more write per node (a live system's
// next write is what reveals a lost last object), polls and uploads make
// every node and the backend hold the same (version, body) for every key;
// then a further pass, feed and round, applies nothing, and every
// acknowledged write is kept, causally superseded, or a recorded loser.
func TestPropertyFeedConvergence(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 5
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { feedPropertyRun(t, seed) })
	}
}

func feedPropertyRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0xfeed))
	docs := mem.New("b")
	shared := newBlobFake(docs)
	const nodes = 3
	keys := []string{"a", "b", "c", "d", "e", "f"}
	var (
		stores [nodes]*store.Store
		links  [nodes]*feedLink
		es     [nodes]*Engine
		writes []acked
	)
	clk := &clock{t: time.Unix(1_000_000, 0)} // a fallback retries its round after feedFallbackRetry
	for i := range nodes {
		name := fmt.Sprintf("n%d", i)
		links[i] = &feedLink{partitioned: &partitioned{Backend: docs}, blobs: shared}
		es[i] = feedEngine(t, name, links[i], clk, func(c *Config) { c.PageSize, c.CheckpointEvery = 2, 3 })
		stores[i] = es[i].st
		runRound(t, es[i]) // the node's first pass: it has caught up
	}
	write := func(n, step int) {
		key := keys[rng.IntN(len(keys))]
		if rng.IntN(5) == 0 {
			rec, err := stores[n].Delete(bg, tenant, key, doc.Precondition{})
			if err == nil {
				writes = append(writes, acked{key, rec.Version})
			} else if fault.ClassOf(err) != fault.NotFound {
				t.Fatal(err)
			}
			return
		}
		rec, err := stores[n].Put(bg, tenant, key, fmt.Appendf(nil, `{"n":%d,"step":%d}`, n, step), doc.Precondition{})
		if err != nil {
			t.Fatal(err)
		}
		writes = append(writes, acked{key, rec.Version})
	}
	// ok accepts an error while n is cut off, or the guard's (never
	// expected with six keys, but not a property violation).
	ok := func(n int, what string, err error) {
		if err != nil && !links[n].down.Load() {
			t.Fatalf("%s on n%d: %v", what, n, err)
		}
	}
	for step := range 400 {
		clk.add(100 * time.Millisecond)
		n := rng.IntN(nodes)
		switch op := rng.IntN(20); {
		case op < 6:
			write(n, step)
		case op < 7:
			links[n].down.Store(!links[n].down.Load())
		case op < 10:
			_, err := es[n].Upload(bg, tenant)
			ok(n, "upload", err)
		case op < 13:
			ok(n, "publish", es[n].feed.publish(bg, tenant))
		case op < 16:
			_, err := es[n].feed.poll(bg, tenant)
			ok(n, "poll", err)
		case op < 17:
			shared.mu.Lock()
			shared.loseN++
			shared.mu.Unlock()
		case op < 18:
			shared.mu.Lock()
			shared.delayN++
			shared.mu.Unlock()
		case op < 19:
			shared.release()
		default: // a cursor goes back: objects are read again
			f := es[n].feed
			f.mu.Lock()
			if ft, ok := f.tenants[tenant]; ok {
				for p, c := range ft.state.cursors {
					ft.state.cursors[p] = c - min(c, uint64(rng.IntN(3)))
				}
			}
			f.mu.Unlock()
		}
	}
	for i := range nodes {
		links[i].down.Store(false)
	}
	shared.mu.Lock()
	shared.loseN, shared.delayN = 0, 0
	shared.mu.Unlock()
	shared.release()
	for i := range nodes {
		write(i, 1000+i)
		// A peer that first published after this node's last listing for
		// peers is found at the next one (feedDiscoverEvery polls on):
		// make it the next poll.
		es[i].feed.mu.Lock()
		es[i].feed.tenantLocked(tenant).polls = 0
		es[i].feed.mu.Unlock()
	}
	pass := func() int {
		clk.add(feedFallbackRetry)
		applied := 0
		for i := range nodes {
			st, err := es[i].Upload(bg, tenant)
			if err != nil {
				t.Fatalf("heal: upload on n%d: %v", i, err)
			}
			applied += st.Applied()
			if err := es[i].feed.publish(bg, tenant); err != nil {
				t.Fatalf("heal: publish on n%d: %v", i, err)
			}
		}
		for i := range nodes {
			st, err := es[i].feed.poll(bg, tenant)
			if err != nil {
				t.Fatalf("heal: poll on n%d: %v", i, err)
			}
			applied += st.Applied()
		}
		return applied
	}
	quiet := false
	for range 10 {
		if pass() == 0 {
			quiet = true
			break
		}
	}
	if !quiet {
		t.Fatal("the feed did not settle in 10 passes")
	}
	for _, k := range keys {
		r, rok := remoteState(t, docs, k)
		for i := range nodes {
			l, lok := localState(t, stores[i], k)
			if l != r || lok != rok {
				for _, name := range shared.names("feed/") {
					o, _ := decodeFeed(shared.blobs[name])
					for _, en := range o.entries {
						if en.key == k {
							t.Logf("%s: %s %x tomb=%v etag %s", name, o.node, en.version.ID(), en.version.Tombstone, en.etag)
						}
					}
				}
				for j := range nodes {
					s, _ := es[j].FeedStatus(tenant)
					t.Logf("n%d: %+v peers %v", j, s, es[j].feed.tenants[tenant].peers)
				}
				ent, _ := docs.Stat(bg, tenant, k)
				t.Logf("backend etag %s; lost %v", ent.ETag, shared.hidden)
				t.Fatalf("after the feed settled, %s: n%d holds %+v (%v), backend %+v (%v)", k, i, l, lok, r, rok)
			}
		}
	}
	if n := pass(); n != 0 {
		t.Fatalf("a further feed pass applied %d actions", n)
	}
	for i := range nodes {
		if st := runRound(t, es[i]); st.Applied() != 0 {
			t.Fatalf("n%d: a round after the feed settled applied %+v", i, st)
		}
	}
	checkNoLostWrite(t, stores[:], docs, writes)
}
