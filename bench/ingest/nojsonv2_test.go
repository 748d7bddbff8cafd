//go:build !goexperiment.jsonv2

package ingest_test

import "testing"

// encoding/json/v2 needs GOEXPERIMENT=jsonv2 on Go 1.26.
func benchJSONv2(b *testing.B) {
	b.Run("encoding-json-v2", func(b *testing.B) { b.Skip("build with GOEXPERIMENT=jsonv2") })
}
