package node

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/fault"
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
		{128 * mi, 0, MemoryBudget{Limit: 128 * mi, Fixed: 40 * mi, Pebble: 16 * mi, MemTable: 4 * mi, KeyFilter: 2 * mi, Go: 70 * mi, Cache: 70 * mi / 3}},
		{128 * mi, 32 * mi, MemoryBudget{Limit: 128 * mi, Fixed: 40 * mi, Pebble: 16 * mi, MemTable: 4 * mi, KeyFilter: 2 * mi, Go: 70 * mi, Cache: 32 * mi}},
		{1024 * mi, 0, MemoryBudget{Limit: 1024 * mi, Fixed: 40 * mi, Pebble: 128 * mi, MemTable: 32 * mi, KeyFilter: 16 * mi, Go: 840 * mi, Cache: 280 * mi}},
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
