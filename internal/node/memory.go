package node

import (
	"cmp"
	"fmt"
	"runtime/debug"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/gcfloor"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
)

// MemoryBudget is how a node divides its memory limit (Config.MemoryLimit,
// cairn serve --memory-limit or GOMEMLIMIT): the limit is the whole
// process's, and the Go runtime gets what the memory outside its heap
// leaves.
//
// Why: GOMEMLIMIT bounds only what the Go runtime maps. In a cgo build
// (the default on Linux) Pebble allocates its block cache and memtables
// with C malloc, the key filter is an anonymous mapping (store/keyfilter_mmap.go),
// and the binary's code and data, thread stacks and the C allocator's own
// overhead are resident too. With the whole limit given to Go, a node at
// GOMEMLIMIT=128MiB peaked at 179–234 MiB RSS.
//
// The split, for a limit L (MemoryBudgetFor):
//   - Fixed: 40 MiB for what no setting sizes: the binary's code and data,
//     which the runtime and the packages' initialisation fault in (31 MiB
//     of a 47 MB binary were resident right after start), the C library,
//     thread stacks and malloc's own bookkeeping;
//   - Pebble: L/8 for the block cache, which the memtables are charged to,
//     each memtable a quarter of it (Pebble stops writes at two, so they
//     never take more than half the cache);
//   - KeyFilter: L/64 caps the key filter (2 MiB at 128 MiB: its first
//     stage, 1.25 MiB, covers a million documents);
//   - Go: the rest, set as the Go runtime's limit (debug.SetMemoryLimit);
//   - Cache: the document cache's default, a third of Go's share, so the
//     live heap (cache, requests in flight, ingest batches) stays well
//     under the runtime's limit and the collector does not run back to
//     back. A --cache-bytes above half of Go's share is refused.
//   - Bodies: half of what the cache leaves of Go's share bounds the
//     document bodies that HTTP writes and RESP MGETs in flight hold
//     (server.Options.Bodies, resp.Options.Replies), at least four of the
//     largest; a request past it is shed.
//
// In a build without cgo Pebble's memory is on the Go heap: then it is
// counted twice, and the node stays further under its limit.
type MemoryBudget struct {
	Limit     int64
	Fixed     int64
	Pebble    int64 // Pebble's block cache, memtables included
	MemTable  int64 // one memtable
	KeyFilter int64 // the key filter's cap
	Go        int64 // the Go runtime's limit
	Cache     int64 // the document cache
	Bodies    int64 // document bodies of requests in flight, each counted twice
}

// memoryFixed is MemoryBudget.Fixed; minMemoryLimit the smallest limit
// that leaves Go a useful share.
const (
	memoryFixed    = 40 << 20
	minMemoryLimit = 96 << 20
)

// MemoryBudgetFor splits limit; cacheBytes is the operator's document
// cache size, 0 for the default share. It fails, naming the settings, when
// the limit is too small or the cache does not fit.
func MemoryBudgetFor(limit, cacheBytes int64) (MemoryBudget, error) {
	if limit < minMemoryLimit {
		return MemoryBudget{}, fault.E(fault.Config, fault.Context{Op: "node.memory"},
			fmt.Errorf("--memory-limit (or GOMEMLIMIT) %s: want at least %s", mib(limit), mib(minMemoryLimit)))
	}
	b := MemoryBudget{Limit: limit, Fixed: memoryFixed, Pebble: limit / 8, KeyFilter: limit / 64}
	b.MemTable = b.Pebble / 4
	b.Go = limit - b.Fixed - b.Pebble - b.KeyFilter
	b.Cache = b.Go / 3
	if cacheBytes > 0 {
		if cacheBytes > b.Go/2 {
			return MemoryBudget{}, fault.E(fault.Config, fault.Context{Op: "node.memory"},
				fmt.Errorf("--cache-bytes %s: want at most %s, half of the Go heap's share of --memory-limit (or GOMEMLIMIT) %s; leave it unset for %s", mib(cacheBytes), mib(b.Go/2), mib(limit), mib(b.Cache)))
		}
		b.Cache = cacheBytes
	}
	b.Bodies = (b.Go - b.Cache) / 2
	return b, nil
}

// bodyBudget is the size of n.bodies: 0 (none) without a memory limit.
func (n *Node) bodyBudget() int64 {
	if n.budget == nil {
		return 0
	}
	return max(n.budget.Bodies, 4*2*cmp.Or(n.cfg.MaxBodyBytes, server.DefaultMaxBodyBytes))
}

// applyMemoryLimit derives the store's and the cache's sizes from
// cfg.MemoryLimit and sets the Go runtime's limit to its share. Without a
// limit it leaves everything as configured.
func (n *Node) applyMemoryLimit() error {
	if n.cfg.MemoryLimit <= 0 {
		return nil
	}
	b, err := MemoryBudgetFor(n.cfg.MemoryLimit, n.cfg.CacheBytes)
	if err != nil {
		return err
	}
	n.budget = &b
	n.cfg.CacheBytes = b.Cache
	if n.cfg.KeyFilterBytes >= 0 { // negative: the operator turned it off
		n.cfg.KeyFilterBytes = min(b.KeyFilter, keyFilterOr(n.cfg.KeyFilterBytes))
	}
	n.bodies = resilience.NewByteBudget(n.bodyBudget())
	debug.SetMemoryLimit(b.Go)
	n.log.Info("memory limit divided", "limit", b.Limit, "go", b.Go, "pebble_cache", b.Pebble, "memtable", b.MemTable,
		"key_filter", n.cfg.KeyFilterBytes, "document_cache", b.Cache, "fixed", b.Fixed, "write_bodies", n.bodyBudget())
	return nil
}

// keyFilterOr is the key filter's configured cap, the store's default
// for 0.
func keyFilterOr(v int64) int64 {
	if v == 0 {
		return 1 << 62
	}
	return v
}

// pebble and memTable are the store's sizes; 0 (the store's defaults)
// without a limit.
func (b *MemoryBudget) pebble() int64 {
	if b == nil {
		return 0
	}
	return b.Pebble
}

func (b *MemoryBudget) memTable() int64 {
	if b == nil {
		return 0
	}
	return b.MemTable
}

// mib formats a size for a person: whole MiB when it is one.
func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
}

// DefaultGCHeapFloor is the heap goal 'cairn serve' keeps at least
// (Config.GCHeapFloor): a node's live heap is a few MiB until its cache
// fills, and at GOGC's 100 the collector would run every few hundred
// requests, marking all of it each time (package gcfloor).
const DefaultGCHeapFloor = 64 << 20

// startGCFloor starts the GC tuner of Config.GCHeapFloor, held to a
// quarter of the Go heap's share of the memory limit, if there is one, so
// that the heap never sits at the runtime's limit because of it.
func (n *Node) startGCFloor() {
	floor := n.cfg.GCHeapFloor
	if floor <= 0 {
		return
	}
	if n.budget != nil {
		floor = min(floor, n.budget.Go/4)
	}
	n.gc = gcfloor.Start(floor)
	n.log.Debug("gc heap floor", "floor_bytes", floor, "gc_percent", n.gc.Percent())
}
