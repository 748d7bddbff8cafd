package main

import (
	"bytes"
	"os"
	"runtime"
	"testing"
)

// On linux with cgo and glibc the command limits malloc's arenas (see
// malloc_cgo.go); elsewhere there is nothing to limit.
func TestMallocArenasLimited(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getenv("MALLOC_ARENA_MAX") != "" {
		t.Skip("only on linux, without MALLOC_ARENA_MAX set")
	}
	if !cgoBuild || !glibc() {
		t.Skip("needs cgo and glibc")
	}
	if !arenasLimited {
		t.Fatal("mallopt(M_ARENA_MAX) was not applied")
	}
}

// glibc reports whether the process runs on glibc (its dynamic loader is
// mapped).
func glibc() bool {
	b, err := os.ReadFile("/proc/self/maps")
	return err == nil && bytes.Contains(b, []byte("libc.so.6"))
}
