//go:build goexperiment.jsonv2

package ingest_test

import (
	jsonv2 "encoding/json/v2"
	"testing"
)

func benchJSONv2(b *testing.B) {
	b.Run("encoding-json-v2", func(b *testing.B) {
		perRecord(b, func(l []byte) error {
			var r refMarket
			return jsonv2.Unmarshal(l, &r)
		})
	})
}
