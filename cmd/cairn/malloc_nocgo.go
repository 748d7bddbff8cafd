//go:build !linux || !cgo

package main

// Without cgo Pebble allocates its cache in the Go heap, and other systems
// have no glibc arenas: nothing to limit (see malloc_cgo.go).
var arenasLimited bool

const cgoBuild = false
