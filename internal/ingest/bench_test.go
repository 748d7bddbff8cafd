package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"sync"
	"testing"

	"github.com/bytedance/sonic"
	gojson "github.com/goccy/go-json"
	"github.com/valyala/fastjson"

	"github.com/cairnstore/cairn/internal/streambuf"
)

// The benchmarks share one input: 100,000 generated MarketData records.
// Run them all in one go (docs/performance.md, ingest decoding):
//
//	GOEXPERIMENT=jsonv2 go test -tags simdjson -run '^$' -bench MarketData -benchmem ./internal/ingest/

const benchRecords = 100_000

var benchInput = sync.OnceValues(func() ([]byte, [][]byte) {
	data := genRecords(benchRecords, 7)
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
		d := NewDecoder(buf)
		var m MarketData
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
		d := NewDecoder(buf)
		var m MarketData
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
		perRecord(b, Validate)
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

// BenchmarkMarketDataProcess measures the whole pipeline (framing, parallel
// decode, ordered delivery) over the same input, in memory.
func BenchmarkMarketDataProcess(b *testing.B) {
	data, _ := benchInput()
	for _, w := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run("workers="+string(rune('0'+w)), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			h := func(context.Context, *Batch) error { return nil }
			for b.Loop() {
				st, err := ProcessBytes(context.Background(), data, Options{Schema: MarketDataSchema, Workers: w}, h)
				if err != nil || st.Records != benchRecords {
					b.Fatal(err, st.Records)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRecords), "ns/record")
		})
	}
}
