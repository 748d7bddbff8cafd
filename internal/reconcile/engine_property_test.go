package reconcile

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
)

// partitioned cuts one node off the shared backend: while down, every call
// fails as a transient error, as a network partition would.
type partitioned struct {
	backend.Backend
	down atomic.Bool
}

func (p *partitioned) cut(op, key string) error {
	if p.down.Load() {
		return fault.New(fault.Transient, backend.Ctx(op, p.Name(), tenant, key), "partitioned")
	}
	return nil
}

func (p *partitioned) List(ctx context.Context, t string, o backend.ListOptions) (backend.Page, error) {
	if err := p.cut(backend.OpList, ""); err != nil {
		return backend.Page{}, err
	}
	return p.Backend.List(ctx, t, o)
}

func (p *partitioned) Get(ctx context.Context, t, k string) (*backend.Object, error) {
	if err := p.cut(backend.OpGet, k); err != nil {
		return nil, err
	}
	return p.Backend.Get(ctx, t, k)
}

func (p *partitioned) Stat(ctx context.Context, t, k string) (backend.Entry, error) {
	if err := p.cut(backend.OpStat, k); err != nil {
		return backend.Entry{}, err
	}
	return p.Backend.Stat(ctx, t, k)
}

func (p *partitioned) Put(ctx context.Context, t, k string, v doc.Version, body []byte, pre backend.Precondition) (string, error) {
	if err := p.cut(backend.OpPut, k); err != nil {
		return "", err
	}
	return p.Backend.Put(ctx, t, k, v, body, pre)
}

func (p *partitioned) Delete(ctx context.Context, t, k string, pre backend.Precondition) error {
	if err := p.cut(backend.OpDelete, k); err != nil {
		return err
	}
	return p.Backend.Delete(ctx, t, k, pre)
}

type acked struct {
	key string
	v   doc.Version
}

// TestPropertyConvergence: three nodes share one backend; random writes and
// deletes on random nodes, rounds and uploader drains, and partitions that
// cut a node off and heal. Once writes stop and every partition heals, two
// rounds per node make every node and the backend hold the same (version,
// body) for every key, a third performs no action, and every acknowledged
// write is the final version, or causally superseded by a later
// acknowledged write, or recorded as a loser in some node's conflict
// history.
func TestPropertyConvergence(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 5
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { propertyRun(t, seed) })
	}
}

func propertyRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0xcafe))
	shared := mem.New("b")
	const nodes = 3
	keys := []string{"a", "b", "c", "d", "e", "f"}
	var (
		stores [nodes]*store.Store
		links  [nodes]*partitioned
		es     [nodes]*Engine
		writes []acked
	)
	for i := range nodes {
		stores[i] = openStore(t, fmt.Sprintf("n%d", i))
		links[i] = &partitioned{Backend: shared}
		es[i] = newEngine(t, stores[i], links[i], func(c *Config) { c.PageSize, c.CheckpointEvery = 2, 3 })
	}
	for step := range 300 {
		n := rng.IntN(nodes)
		key := keys[rng.IntN(len(keys))]
		switch op := rng.IntN(10); {
		case op < 4:
			rec, err := stores[n].Put(bg, tenant, key, fmt.Appendf(nil, `{"n":%d,"step":%d}`, n, step), doc.Precondition{})
			if err != nil {
				t.Fatal(err)
			}
			writes = append(writes, acked{key, rec.Version})
		case op < 5:
			rec, err := stores[n].Delete(bg, tenant, key, doc.Precondition{})
			if err == nil {
				writes = append(writes, acked{key, rec.Version})
			} else if fault.ClassOf(err) != fault.NotFound {
				t.Fatal(err)
			}
		case op < 6:
			links[n].down.Store(!links[n].down.Load())
		case op < 8:
			if _, err := es[n].Round(bg, tenant); err != nil && !links[n].down.Load() {
				t.Fatalf("step %d: round on n%d: %v", step, n, err)
			}
		default:
			if _, err := es[n].Upload(bg, tenant); err != nil && !links[n].down.Load() {
				t.Fatalf("step %d: upload on n%d: %v", step, n, err)
			}
		}
	}
	for i := range nodes {
		links[i].down.Store(false)
	}
	for turn := range 2 {
		for i := range nodes {
			if _, err := es[i].Round(bg, tenant); err != nil {
				t.Fatalf("heal turn %d, n%d: %v", turn, i, err)
			}
		}
	}
	for _, k := range keys {
		r, rok := remoteState(t, shared, k)
		for i := range nodes {
			l, lok := localState(t, stores[i], k)
			if l != r || lok != rok {
				t.Fatalf("after 2 rounds per node, %s: n%d holds %+v (%v), backend %+v (%v)", k, i, l, lok, r, rok)
			}
		}
	}
	for i := range nodes {
		if st := runRound(t, es[i]); st.Applied() != 0 {
			t.Fatalf("n%d: a round after convergence applied %+v", i, st)
		}
	}
	checkNoLostWrite(t, stores[:], shared, writes)
}

// checkNoLostWrite fails for each acknowledged write that the backend does
// not keep, that no later write supersedes, and that no node recorded as
// a loser.
func checkNoLostWrite(t *testing.T, stores []*store.Store, be backend.Backend, writes []acked) {
	t.Helper()
	// A version "carries" w when it is w, or dominates w with w's content:
	// a resolution that w won (its vector is the maximum, its content the
	// winner's).
	carries := func(v, w *doc.Version) bool {
		return v.ID() == w.ID() || (w.Compare(v) == doc.Before && v.Hash == w.Hash && v.Tombstone == w.Tombstone)
	}
	var losers []acked
	for i := range stores {
		for rec, err := range stores[i].Conflicts(bg, tenant, "") {
			if err != nil {
				t.Fatal(err)
			}
			losers = append(losers, acked{rec.Key, rec.Loser})
		}
	}
	for _, w := range writes {
		obj, err := be.Get(bg, tenant, w.key)
		if err == nil && carries(&obj.Version, &w.v) {
			continue // kept
		}
		ok := false
		for _, o := range writes {
			ok = ok || (o.key == w.key && w.v.Compare(&o.v) == doc.Before) // superseded by a later write
		}
		for _, l := range losers {
			ok = ok || (l.key == w.key && carries(&l.v, &w.v)) // lost under lww, recorded
		}
		if !ok {
			t.Errorf("acknowledged write %s of %s lost: not kept, not superseded, not a recorded loser", w.v.ID(), w.key)
		}
	}
}
