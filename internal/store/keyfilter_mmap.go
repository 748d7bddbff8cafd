//go:build linux || darwin

package store

import (
	"sync/atomic"
	"syscall"
	"unsafe"
)

// filterWords allocates a filter's bits outside the Go heap, in anonymous
// memory mapped for it. On the heap they would count as live data, and the
// collector lets the heap grow to twice the live data before it runs: a
// 10 MiB filter would cost ~20 MiB of resident memory. free unmaps them;
// newKeyFilter calls it once the filter is unreachable. The race detector
// accepts atomics outside the heap (it does not track them).
func filterWords(n int) (words []atomic.Uint64, free func()) {
	b, err := syscall.Mmap(-1, 0, n*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]atomic.Uint64, n), func() {}
	}
	return unsafe.Slice((*atomic.Uint64)(unsafe.Pointer(unsafe.SliceData(b))), n), func() { _ = syscall.Munmap(b) }
}
