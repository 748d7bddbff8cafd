//go:build !(linux || darwin)

package store

import "sync/atomic"

// filterWords allocates a filter's bits on the Go heap where anonymous
// mappings are not used (see keyfilter_mmap.go).
func filterWords(n int) (words []atomic.Uint64, free func()) {
	return make([]atomic.Uint64, n), func() {}
}
