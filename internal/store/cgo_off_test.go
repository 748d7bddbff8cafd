//go:build !linux || !cgo

package store

const cgoEnabled = false
