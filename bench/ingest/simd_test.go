package ingest_test

import (
	"testing"

	"github.com/minio/simdjson-go"
)

// benchSIMD parses record by record, reusing the parsed buffers, and
// extracts the same fields as the other decoders.
func benchSIMD(b *testing.B) {
	b.Run("simdjson-go", func(b *testing.B) {
		if !simdjson.SupportedCPU() {
			b.Skip("CPU lacks AVX2/CLMUL")
		}
		var pj *simdjson.ParsedJson
		var iter simdjson.Iter
		var obj, meta simdjson.Object
		var elem simdjson.Element
		perRecord(b, func(l []byte) error {
			var err error
			if pj, err = simdjson.Parse(l, pj, simdjson.WithCopyStrings(false)); err != nil {
				return err
			}
			iter = pj.Iter()
			iter.Advance()
			if _, root, err := iter.Root(&iter); err == nil {
				if o, err := root.Object(&obj); err == nil {
					for _, k := range []string{"symbol", "raw_feed"} {
						if e := o.FindKey(k, &elem); e != nil {
							_, _ = e.Iter.StringBytes()
						}
					}
					if e := o.FindKey("price", &elem); e != nil {
						_, _ = e.Iter.Float()
					}
					if e := o.FindKey("volume", &elem); e != nil {
						_, _ = e.Iter.Uint()
					}
					if e := o.FindKey("metadata", &elem); e != nil {
						if m, err := e.Iter.Object(&meta); err == nil {
							for _, k := range []string{"exchange", "data_source", "extra_info"} {
								if e := m.FindKey(k, &elem); e != nil {
									_, _ = e.Iter.StringBytes()
								}
							}
						}
					}
				}
			}
			return nil
		})
	})
}
