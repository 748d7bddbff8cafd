package node

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/store"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// TestMemoryBudget: a memory limit is divided so that the parts outside
// the Go heap and Go's share add up to the limit, and a limit too small or
// a document cache too large for it is refused naming the setting.
func TestMemoryBudget(t *testing.T) {
	const mi = 1 << 20
	for _, c := range []struct {
		limit, cache int64
		want         MemoryBudget
	}{
		{128 * mi, 0, MemoryBudget{Limit: 128 * mi, Fixed: 40 * mi, Pebble: 16 * mi, MemTable: 4 * mi, KeyFilter: 2 * mi, Go: 70 * mi, Cache: 70 * mi / 3, Bodies: (70*mi - 70*mi/3) / 2}},
		{128 * mi, 32 * mi, MemoryBudget{Limit: 128 * mi, Fixed: 40 * mi, Pebble: 16 * mi, MemTable: 4 * mi, KeyFilter: 2 * mi, Go: 70 * mi, Cache: 32 * mi, Bodies: 19 * mi}},
		{1024 * mi, 0, MemoryBudget{Limit: 1024 * mi, Fixed: 40 * mi, Pebble: 128 * mi, MemTable: 32 * mi, KeyFilter: 16 * mi, Go: 840 * mi, Cache: 280 * mi, Bodies: 280 * mi}},
	} {
		got, err := MemoryBudgetFor(c.limit, c.cache)
		if err != nil {
			t.Fatalf("%d, %d: %v", c.limit, c.cache, err)
		}
		if got != c.want {
			t.Errorf("%d MiB, cache %d: got %+v, want %+v", c.limit/mi, c.cache, got, c.want)
		}
		if sum := got.Fixed + got.Pebble + got.KeyFilter + got.Go; sum != c.limit {
			t.Errorf("%d MiB: the parts add up to %d", c.limit/mi, sum)
		}
	}
	for _, c := range []struct {
		limit, cache int64
		want         string
	}{
		{64 * mi, 0, "--memory-limit (or GOMEMLIMIT) 64MiB: want at least 96MiB"},
		{128 * mi, 64 * mi, "--cache-bytes 64MiB: want at most 35MiB"},
	} {
		_, err := MemoryBudgetFor(c.limit, c.cache)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, fault.ErrConfig) {
			t.Errorf("%d MiB, cache %d: got %v, want a configuration error with %q", c.limit/mi, c.cache/mi, err, c.want)
		}
	}
}

// TestMemoryLimitApplied: a node started with a memory limit gives the Go
// runtime its share, sizes the document cache and the key filter from it,
// and says so in its log.
func TestMemoryLimitApplied(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	logs := &proctest.SyncBuffer{} // the node logs from its goroutines
	n, err := Start(context.Background(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", MemoryLimit: 128 << 20, KeyFilterBytes: store.DefaultKeyFilterBytes,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Trace: telemetry.Config{NoGlobal: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	if got, want := debug.SetMemoryLimit(-1), int64(70<<20); got != want {
		t.Errorf("Go's memory limit %d, want %d", got, want)
	}
	if got, want := n.cfg.CacheBytes, int64(70<<20)/3; got != want {
		t.Errorf("document cache %d, want %d", got, want)
	}
	if got, want := n.cfg.KeyFilterBytes, int64(2<<20); got != want {
		t.Errorf("key filter cap %d, want %d", got, want)
	}
	if !strings.Contains(logs.String(), "memory limit divided") {
		t.Errorf("no division logged:\n%s", logs.String())
	}
}
