package docs

import (
	"cmp"
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/cairnstore/cairn/internal/cache"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/register"
	"github.com/cairnstore/cairn/internal/store"
)

// TestLinearizableCacheAndStore records concurrent Put/Get/Delete histories
// against the real store with the cache in front, under a budget small
// enough to evict constantly and with compaction forced throughout, and
// checks them with porcupine.
func TestLinearizableCacheAndStore(t *testing.T) {
	c := cache.New(cache.Options{MaxBytes: 600, Shards: 1, CompactInterval: -1}) // room for two of the four keys
	defer c.Close()
	st, err := store.Open(t.TempDir(), store.Options{Durability: store.Buffered, Watcher: NewFollower(c, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := New(st, c, nil)

	const clients, opsPerClient, keys = 8, 300, 4
	stopCompact := make(chan struct{})
	compacted := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stopCompact:
				compacted <- n
				return
			default:
				c.Compact()
				n++
			}
		}
	}()
	history := register.Record(clients, opsPerClient, keys, "k", 7, func(_ int, in register.Input) register.Output {
		return apply(t, d, in)
	})
	close(stopCompact)
	if n := <-compacted; n == 0 {
		t.Fatal("no compaction ran during the history")
	}
	if s := c.Stats(); s.Evictions == 0 {
		t.Errorf("no evictions: the budget is too large to exercise eviction (stats %+v)", s)
	}
	res, info := porcupine.CheckOperationsVerbose(register.Model, history, time.Minute)
	if res != porcupine.Ok {
		explain(t, history)
		if path := os.Getenv("CAIRN_LIN_VIZ"); path != "" {
			if f, err := os.Create(path); err == nil {
				porcupine.Visualize(register.Model, info, f)
				f.Close()
			}
		}
		t.Fatalf("history of %d operations is not linearizable (%v)", len(history), res)
	}
}

func apply(t *testing.T, d *Service, in register.Input) register.Output {
	ctx := context.Background()
	var err error
	switch in.Op {
	case 'p':
		_, _, err = d.Put(ctx, "lin", in.Key, []byte(in.Value), doc.Precondition{})
	case 'd':
		err = d.Delete(ctx, "lin", in.Key, doc.Precondition{})
		if errors.Is(err, fault.ErrNotFound) {
			return register.Output{}
		}
	default:
		var got struct{ Body []byte }
		g, gerr := d.Get(ctx, "lin", in.Key)
		got.Body, err = g.Body, gerr
		if errors.Is(err, fault.ErrNotFound) {
			return register.Output{}
		}
		if err == nil {
			return register.Output{Value: string(got.Body), Found: true}
		}
	}
	if err != nil {
		t.Errorf("%c %s: %v", in.Op, in.Key, err)
	}
	return register.Output{Found: true}
}

// explain logs the shortest failing prefix (by call time) of the first
// non-linearizable key's history, which usually shows the anomaly in its
// last few lines.
func explain(t *testing.T, history []porcupine.Operation) {
	for _, part := range register.Model.Partition(history) {
		if porcupine.CheckOperations(register.Model, part) {
			continue
		}
		slices.SortFunc(part, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		lo, hi := 1, len(part)
		for lo < hi {
			if mid := (lo + hi) / 2; porcupine.CheckOperations(register.Model, part[:mid]) {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		t.Logf("shortest failing prefix: %d of %d operations on this key; its end:", lo, len(part))
		for _, op := range part[max(0, lo-12):lo] {
			t.Logf("  client %d [%d, %d]µs %s", op.ClientId, op.Call/1000, op.Return/1000,
				register.Model.DescribeOperation(op.Input, op.Output))
		}
		return
	}
}
