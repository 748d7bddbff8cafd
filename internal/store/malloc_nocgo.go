//go:build !linux || !cgo

package store

// Without cgo Pebble allocates its cache in the Go heap, and other systems
// have no glibc arenas: nothing to limit (see malloc_cgo.go).
var arenasLimited bool
