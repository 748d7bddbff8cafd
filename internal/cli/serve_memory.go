package cli

import (
	"flag"
	"fmt"

	"github.com/cairnstore/cairn/internal/node"
)

func (f *serveFlags) registerMemory(fs *flag.FlagSet) {
	fs.Var(&f.memoryLimit, "memory-limit", "the node's whole memory limit (`size`, e.g. 1GiB; default: $GOMEMLIMIT, else none): divided between the Go heap, Pebble's cache and memtables and the key filter, and the document cache defaults to a share of it (README, Memory)")
}

// markSet notes which settings were given, once flags, environment and
// config file are settled: a memory limit derives the defaults of the
// others.
func (f *serveFlags) markSet(fs *flag.FlagSet) {
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "cache-bytes" {
			f.cacheSet = true
		}
	})
}

// memory sets the node's memory limit: --memory-limit, else GOMEMLIMIT,
// which the Go runtime reads at start. A limit makes the node divide it
// (node.MemoryBudget) and lowers the Go runtime's share below it.
func (f *serveFlags) memory(cfg *node.Config, env Env) error {
	limit := int64(f.memoryLimit)
	if limit == 0 {
		v := env.Getenv("GOMEMLIMIT")
		if v == "" || v == "off" {
			return nil
		}
		var b byteSize
		if err := b.Set(v); err != nil {
			return fmt.Errorf("GOMEMLIMIT %q: %v", v, err)
		}
		limit = int64(b)
	}
	cfg.MemoryLimit = limit
	if !f.cacheSet {
		cfg.CacheBytes = 0 // the budget's share
	}
	_, err := node.MemoryBudgetFor(limit, cfg.CacheBytes) // fails naming the settings
	return err
}
