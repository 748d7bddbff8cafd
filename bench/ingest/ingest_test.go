// Package ingest_test compares cairn's MarketData decoder (internal/ingest)
// with encoding/json (v1 and, with GOEXPERIMENT=jsonv2, v2), goccy/go-json,
// sonic, fastjson and simdjson-go.
package ingest_test

import (
	"bytes"
	"encoding/json"
	"runtime"
	"sync"
	"testing"

	"github.com/bytedance/sonic"
	gojson "github.com/goccy/go-json"
	"github.com/valyala/fastjson"

	"github.com/cairnstore/cairn/internal/ingest"
	"github.com/cairnstore/cairn/internal/ingest/ingesttest"
	"github.com/cairnstore/cairn/internal/streambuf"
)

// The benchmarks share one input: 100,000 generated MarketData records,
// the input of internal/ingest's BenchmarkMarketDataProcess. From the
// bench directory:
//
//	GOEXPERIMENT=jsonv2 go test -run '^$' -bench MarketData -benchmem ./ingest/

const benchRecords = 100_000

var benchInput = sync.OnceValues(func() ([]byte, [][]byte) {
	data := ingesttest.Records(benchRecords, 7)
	return data, bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
})

// perRecord runs decode over every record of the input per iteration and
// reports throughput over the input bytes, ns/record and allocs/record.
func perRecord(b *testing.B, decode func(line []byte) error) {
	data, lines := benchInput()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		for _, l := range lines {
			if err := decode(l); err != nil {
				b.Fatal(err)
			}
		}
	}
	runtime.ReadMemStats(&after)
	n := float64(b.N) * float64(len(lines))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/record")
}

func BenchmarkMarketData(b *testing.B) {
	b.Run("cairn", func(b *testing.B) {
		buf := streambuf.New(streambuf.Config{})
		d := ingest.NewDecoder(buf)
		var m ingest.MarketData
		n := 0
		perRecord(b, func(l []byte) error {
			if n++; n%benchRecords == 0 {
				buf.Reset() // one batch per pass over the input
			}
			return d.Decode(l, &m)
		})
	})
	b.Run("cairn+rawfeed", func(b *testing.B) {
		buf := streambuf.New(streambuf.Config{})
		d := ingest.NewDecoder(buf)
		var m ingest.MarketData
		var feed []byte
		n := 0
		perRecord(b, func(l []byte) error {
			if n++; n%benchRecords == 0 {
				buf.Reset()
			}
			if err := d.Decode(l, &m); err != nil {
				return err
			}
			var err error
			feed, err = m.AppendRawFeed(feed[:0]) // what the allocating decoders do eagerly
			return err
		})
	})
	b.Run("cairn-validate", func(b *testing.B) {
		perRecord(b, ingest.Validate)
	})
	b.Run("encoding-json", func(b *testing.B) {
		perRecord(b, func(l []byte) error {
			var r refMarket
			return json.Unmarshal(l, &r)
		})
	})
	b.Run("goccy-go-json", func(b *testing.B) {
		perRecord(b, func(l []byte) error {
			var r refMarket
			return gojson.Unmarshal(l, &r)
		})
	})
	b.Run("sonic-default", func(b *testing.B) {
		perRecord(b, func(l []byte) error {
			var r refMarket
			return sonic.ConfigDefault.Unmarshal(l, &r)
		})
	})
	b.Run("sonic-std", func(b *testing.B) { // validates strings like encoding/json
		perRecord(b, func(l []byte) error {
			var r refMarket
			return sonic.ConfigStd.Unmarshal(l, &r)
		})
	})
	b.Run("fastjson", func(b *testing.B) {
		var p fastjson.Parser
		perRecord(b, func(l []byte) error {
			v, err := p.ParseBytes(l)
			if err != nil {
				return err
			}
			_ = v.GetStringBytes("symbol")
			_ = v.GetFloat64("price")
			_ = v.GetUint64("volume")
			_ = v.GetStringBytes("metadata", "exchange")
			_ = v.GetStringBytes("metadata", "data_source")
			_ = v.GetStringBytes("metadata", "extra_info")
			_ = v.GetStringBytes("raw_feed") // still base64, like cairn's lazy feed
			return nil
		})
	})
	benchJSONv2(b)
	benchSIMD(b)
}

// refMarket is the seed's allocating struct, for the decoders that fill a
// struct (the one internal/ingest's differential tests decode into).
type refMarket struct {
	Symbol   string  `json:"symbol"`
	Price    float64 `json:"price"`
	Volume   uint64  `json:"volume"`
	Metadata struct {
		Exchange   string  `json:"exchange"`
		DataSource string  `json:"data_source"`
		ExtraInfo  *string `json:"extra_info"`
	} `json:"metadata"`
	RawFeed []byte `json:"raw_feed"`
}
