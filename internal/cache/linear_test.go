package cache

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/cairnstore/cairn/internal/register"
)

// Linearizability check: clients Put, Delete and Get through the cache in
// front of memStore exactly as the docs service will (write: commit, then
// Set; read: Get, on a miss Lease → store read → Fill), while compaction is
// forced in a loop and a tiny budget keeps evicting. Every key must behave
// as a single register.

// The model is register.Model, shared with the node's and the chaos
// checks. The cache's deletes are blind (a tombstone whether or not the key
// existed), so they report Unknown: the register is cleared, whatever was
// found.

func TestLinearizable(t *testing.T) {
	rounds, opsPerClient := 6, 400
	if os.Getenv("CAIRN_LONG") == "1" {
		rounds, opsPerClient = 40, 1000
	}
	for r := range rounds {
		t.Run(fmt.Sprint("round", r), func(t *testing.T) { runLinearizable(t, uint64(r), opsPerClient) })
	}
}

func runLinearizable(t *testing.T, seed uint64, opsPerClient int) {
	const clients, nkeys = 6, 6
	st := newStore()
	// Two shards, room for about two entries each: constant eviction.
	c := newCache(Options{
		MaxBytes: 2 * 2 * size(Key{"t", "k0"}, &Entry{Body: []byte("c0-000")}),
		Shards:   2, CompactInterval: -1, MaxLeasesPerShard: 2,
	}, hooks{})
	defer c.Close()
	rs := &readSide{c: c, st: st}
	var yields atomic.Uint64
	rs.yield = func() { // yield on a pseudo-random half of the steps
		if yields.Add(1)*0x9E3779B97F4A7C15>>63 == 1 {
			runtime.Gosched()
		}
	}

	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				c.Compact()
			}
		}
	})

	var clock atomic.Int64
	hist := make([][]porcupine.Operation, clients)
	var wg sync.WaitGroup
	for id := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(id)))
			for i := range opsPerClient {
				k := Key{"t", fmt.Sprintf("k%d", rng.IntN(nkeys))}
				in := register.Input{Key: k.Key}
				var out register.Output
				call := clock.Add(1)
				switch p := rng.IntN(100); {
				case p < 55:
					in.Op = 'g'
					out.Value = rs.get(k)
					out.Found = out.Value != ""
				case p < 85:
					in.Op, in.Value = 'p', fmt.Sprintf("c%d-%03d", id, i%1000)
					// pause between commit and Set: the stale-fill window
					st.write(c, k, in.Value, false, rs.pause)
				default:
					in.Op, out.Unknown = 'd', true
					st.write(c, k, "", true, rs.pause)
				}
				hist[id] = append(hist[id], porcupine.Operation{
					ClientId: id, Input: in, Call: call, Output: out, Return: clock.Add(1),
				})
			}
		})
	}
	wg.Wait()
	close(stop)
	bg.Wait()

	var all []porcupine.Operation
	for _, h := range hist {
		all = append(all, h...)
	}
	res, _ := porcupine.CheckOperationsVerbose(register.Model, all, 30*time.Second)
	if res != porcupine.Ok {
		t.Fatalf("history of %d operations: %s", len(all), res)
	}
	s := c.Stats()
	if s.Evictions == 0 || s.Compactions == 0 || s.Misses == 0 {
		t.Fatalf("run did not exercise eviction/compaction/misses: %+v", s)
	}
	t.Logf("%d ops ok; stats %+v", len(all), s)
}
