//go:build !simdjson

package ingest

import "testing"

// minio/simdjson-go is not in go.mod's committed requirements; build with
// -tags simdjson after `go get github.com/minio/simdjson-go@v0.4.5`.
func benchSIMD(b *testing.B) {
	b.Run("simdjson-go", func(b *testing.B) { b.Skip("build with -tags simdjson") })
}
