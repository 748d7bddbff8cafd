package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

// collected is what a test handler saw, copied out of the batch.
type collected struct {
	keys  []string
	lines []int64
	offs  []int64
	raws  []string
}

func (c *collected) handler() Handler {
	var mu sync.Mutex
	return func(_ context.Context, b *Batch) error {
		mu.Lock() // Handler calls are serial; the lock only satisfies the race detector's view of the test
		defer mu.Unlock()
		for _, r := range b.Records {
			c.keys = append(c.keys, r.Key.String())
			c.lines = append(c.lines, r.Line)
			c.offs = append(c.offs, r.Offset)
			c.raws = append(c.raws, string(r.Raw))
		}
		return nil
	}
}

func (c *collected) String() string {
	var sb strings.Builder
	for i := range c.keys {
		fmt.Fprintf(&sb, "%d@%d %s %s\n", c.lines[i], c.offs[i], c.keys[i], c.raws[i])
	}
	return sb.String()
}

func rejectString(rs []Reject) string {
	var sb strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&sb, "%d@%d %v: %v\n", r.Line, r.Offset, r.Kind, r.Err)
	}
	return sb.String()
}

const genericSample = "{\"id\":\"a\",\"v\":1}\n" +
	"{\"id\":\"b\\u0041\",\"v\":[1,2]}  \r\n" +
	"\n" +
	"   {\"id\":\"bad\",\"v\":01}\n" +
	"{\"id\":\"c\"}{\"id\":\"d\"}\n" +
	"{\"nokey\":true}\n" +
	"\"just a string\"\n" +
	"{\"id\":\"e\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n" +
	"{\"id\":\"f\"} 1 2\n" +
	"{\"v\":{},\"id\":3}\n" +
	"{\"id\":\"last\"}"

func TestProcessGeneric(t *testing.T) {
	var c collected
	st, err := Process(context.Background(), strings.NewReader(genericSample),
		Options{KeyField: "id", MaxRecordSize: 64, Ordered: true}, c.handler())
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := "a bA 3 last"
	if got := strings.Join(c.keys, " "); got != wantKeys {
		t.Errorf("keys = %q, want %q", got, wantKeys)
	}
	if st.Records != 4 || st.Malformed != 5 || st.Oversize != 1 || st.Bytes != int64(len(genericSample)) {
		t.Errorf("stats = %+v", st)
	}
	want := "4@51 malformed: ingest: invalid JSON at byte 67: number has a leading zero\n" +
		"5@71 malformed: ingest: invalid JSON at byte 81: trailing data after the JSON value\n" +
		"6@92 malformed: ingest: field id at byte 92: key not found\n" +
		"7@107 malformed: ingest: field id at byte 107: key not found\n" +
		"8@123 oversize: ingest: record exceeds the maximum size: a line holds at most 64 bytes\n" +
		"9@217 malformed: ingest: invalid JSON at byte 228: trailing data after the JSON value\n"
	if got := rejectString(st.Rejects); got != want {
		t.Errorf("rejects:\n%s\nwant:\n%s", got, want)
	}
	if c.raws[1] != `{"id":"b\u0041","v":[1,2]}` {
		t.Errorf("raw bytes re-encoded: %q", c.raws[1])
	}
}

// TestProcessTrailingData: a line whose value is followed by anything but
// whitespace is rejected whole, for either schema, with the offset of the
// first trailing byte; no part of it reaches the Handler.
func TestProcessTrailingData(t *testing.T) {
	md := `{"symbol":"S","price":1,"volume":2,"metadata":{"exchange":"X","data_source":"d"}}`
	for _, c := range []struct {
		name, line string
		opts       Options
		at         int // offset of the trailing byte in line
	}{
		{"extra brace", `{"id":"j3","x":1}}`, Options{KeyField: "id"}, 17},
		{"string after", `{"id":"j5"}"tail"`, Options{KeyField: "id"}, 11},
		{"number after", `{"id":"j6"}123`, Options{KeyField: "id"}, 11},
		{"second object", `{"id":"j7"}{"id":"j8"}`, Options{KeyField: "id"}, 11},
		{"after whitespace", "{\"id\":\"j9\"} \t x", Options{KeyField: "id"}, 14},
		{"no key, trailing", `{"v":1}]`, Options{KeyField: "id"}, 7},
		{"marketdata", md + `}`, Options{Schema: MarketDataSchema}, len(md)},
		{"marketdata, bad shape", `{"symbol":1}"x"`, Options{Schema: MarketDataSchema}, 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := `{"id":"ok","symbol":"OK","price":1,"volume":2,"metadata":{"exchange":"X","data_source":"d"}}` + "\n" + c.line + "\n"
			var got collected
			st, err := ProcessBytes(context.Background(), []byte(in), c.opts, got.handler())
			if err != nil {
				t.Fatal(err)
			}
			if len(got.raws) != 1 || st.Records != 1 || st.Malformed != 1 {
				t.Fatalf("records %q, stats %+v; want only line 1", got.raws, st)
			}
			lineOff := strings.IndexByte(in, '\n') + 1
			want := fmt.Sprintf("2@%d malformed: ingest: invalid JSON at byte %d: trailing data after the JSON value\n", lineOff, lineOff+c.at)
			if r := rejectString(st.Rejects); r != want {
				t.Errorf("rejects %q, want %q", r, want)
			}
		})
	}
}

// TestProcessRawFeedBase64: with the MarketData schema, a record whose
// raw_feed is not base64 is rejected, with the offset of the value; one
// that is, or is null, absent or empty, is accepted.
func TestProcessRawFeedBase64(t *testing.T) {
	rec := func(feed string) string {
		return `{"symbol":"S","price":1,"volume":2,"metadata":{"exchange":"X","data_source":"d"}` + feed + `}`
	}
	good := []string{rec(``), rec(`,"raw_feed":null`), rec(`,"raw_feed":""`), rec(`,"raw_feed":"aGVsbG8="`), rec(`,"raw_feed":"aGVs\nbG8="`)}
	in := strings.Join(good, "\n") + "\n" + rec(`,"raw_feed":"!!notbase64"`) + "\n" + rec(`,"raw_feed":"YWJ"`) + "\n"
	var got collected
	st, err := ProcessBytes(context.Background(), []byte(in), Options{Schema: MarketDataSchema, Ordered: true}, got.handler())
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != int64(len(good)) || st.Malformed != 2 {
		t.Fatalf("stats %+v; want %d records and 2 malformed", st, len(good))
	}
	at := strings.Index(rec(`,"raw_feed":"`), `"raw_feed":`) + len(`"raw_feed":`)
	off6 := len(strings.Join(good, "\n")) + 1
	off7 := off6 + len(rec(`,"raw_feed":"!!notbase64"`)) + 1
	want := fmt.Sprintf("6@%d malformed: ingest: field raw_feed at byte %d: invalid base64: illegal base64 data at input byte 0\n", off6, off6+at) +
		fmt.Sprintf("7@%d malformed: ingest: field raw_feed at byte %d: invalid base64: illegal base64 data at input byte 0\n", off7, off7+at)
	if r := rejectString(st.Rejects); r != want {
		t.Errorf("rejects %q, want %q", r, want)
	}
}

// FuzzProcessLine: a line is delivered whole or not at all. Whenever
// Validate rejects the line's bytes, nothing of the line reaches the
// Handler; whenever the Handler sees a record, it is the line's value,
// trimmed of whitespace, and the line is valid JSON.
func FuzzProcessLine(f *testing.F) {
	for _, s := range []string{`{"id":"a"}`, `{"id":"j3","x":1}}`, `{"id":"j5"}"tail"`, `{"id":"j6"}123`, `{"id":1} {"id":2}`, ` {"id":"b"} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.IndexByte(line, '\n') >= 0 {
			return // one line only
		}
		var got collected
		st, err := ProcessBytes(context.Background(), line, Options{KeyField: "id"}, got.handler())
		if err != nil {
			t.Fatal(err)
		}
		if Validate(line) != nil && len(got.raws) != 0 {
			t.Fatalf("%q: invalid JSON, yet %q was delivered", line, got.raws)
		}
		if len(got.raws) > 1 || st.Records+st.Malformed+st.Oversize > 1 {
			t.Fatalf("%q: one line gave %d records, stats %+v", line, len(got.raws), st)
		}
		if len(got.raws) == 1 && got.raws[0] != string(bytes.Trim(line, " \t\r")) {
			t.Fatalf("%q: delivered %q, not the whole value", line, got.raws[0])
		}
	})
}

func TestProcessKeyPointer(t *testing.T) {
	in := `{"a":{"x/y":[{"k":"no"},{"k~":"yes"}]}}` + "\n" + `{"a":{"x/y":[0,{"k~":12.5}]}}` + "\n" + `{"a":{"x/y":[0]}}`
	var c collected
	st, err := ProcessBytes(context.Background(), []byte(in), Options{KeyPointer: "/a/x~1y/1/k~0"}, c.handler())
	if err != nil || strings.Join(c.keys, " ") != "yes 12.5" || st.Malformed != 1 {
		t.Fatalf("keys %q, stats %+v, err %v", c.keys, st, err)
	}
	for _, p := range []string{"a", "/a~2"} {
		if _, err := ProcessBytes(context.Background(), nil, Options{KeyPointer: p}, c.handler()); err == nil {
			t.Errorf("pointer %q accepted", p)
		}
	}
}

// TestProcessBodyPointer: with BodyPointer, a record's Raw is the value it
// names, byte for byte as sent, wherever the member stands; a record
// without it is rejected, naming the pointer.
func TestProcessBodyPointer(t *testing.T) {
	in := `{"key":"a","doc":{"x": [1, 2]}}` + "\n" +
		`{"doc":"s\u0041","key":"b"}` + "\n" +
		`{"key":"c"}` + "\n" +
		`{"key":"d","doc":null,"doc":{"last":true}}` + "\n" +
		`{"key":"e","doc":{"x":1}} trailing` + "\n"
	var c collected
	st, err := ProcessBytes(context.Background(), []byte(in),
		Options{KeyPointer: ExportKeyPointer, BodyPointer: ExportBodyPointer, Ordered: true}, c.handler())
	if err != nil {
		t.Fatal(err)
	}
	want := "1@0 a {\"x\": [1, 2]}\n2@32 b \"s\\u0041\"\n4@72 d {\"last\":true}\n"
	if got := c.String(); got != want {
		t.Errorf("records:\n%s\nwant:\n%s", got, want)
	}
	if st.Malformed != 2 || len(st.Rejects) != 2 || !strings.Contains(st.Rejects[0].Reason(), "/doc at byte 60: document not found") ||
		!strings.Contains(st.Rejects[1].Reason(), "trailing") {
		t.Errorf("rejects %+v:\n%s", st, rejectString(st.Rejects))
	}
	// The limits bound the document, not the line around it.
	const limit = 64
	doc := `"` + strings.Repeat("x", limit-2) + `"`
	deep := strings.Repeat("[", 5) + strings.Repeat("]", 5)
	in = `{"key":"at-limit","doc":` + doc + "}\n" + `{"key":"over","doc":` + doc[:1] + "x" + doc[1:] + "}\n" + `{"key":"deep","doc":` + deep + "}\n"
	c = collected{}
	st, err = ProcessBytes(context.Background(), []byte(in),
		Options{KeyPointer: ExportKeyPointer, BodyPointer: ExportBodyPointer, MaxRecordSize: limit, MaxDepth: 5, Ordered: true}, c.handler())
	if err != nil || strings.Join(c.keys, " ") != "at-limit deep" || st.Oversize != 1 ||
		!strings.Contains(st.Rejects[0].Reason(), "the document is 65 bytes, over the limit of 64") {
		t.Errorf("at the limits: keys %q, stats %+v, %v:\n%s", c.keys, st, err, rejectString(st.Rejects))
	}
	for _, o := range []Options{{KeyField: "k", BodyPointer: "doc"}, {Schema: MarketDataSchema, BodyPointer: "/doc"}} {
		if err := o.Check(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// FuzzExportLine: with the export format's pointers, a record delivered
// from a line is exactly the bytes encoding/json finds at the line's "doc"
// member (the last, if repeated), and the line is valid JSON.
func FuzzExportLine(f *testing.F) {
	for _, s := range []string{`{"key":"a","doc":{"x":1}}`, `{"doc":[1,"\u0041"],"key":7}`, `{"key":"a"}`,
		`{"key":"a","doc":1,"doc":{"y":null}}`, `[{"key":"a","doc":1}]`, `{"key":"a","doc":"x"} 1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.IndexByte(line, '\n') >= 0 {
			return // one line only
		}
		var got collected
		o := Options{KeyPointer: ExportKeyPointer, BodyPointer: ExportBodyPointer}
		if _, err := ProcessBytes(context.Background(), line, o, got.handler()); err != nil {
			t.Fatal(err)
		}
		if len(got.raws) == 0 {
			return
		}
		if Validate(line) != nil {
			t.Fatalf("%q: invalid JSON, yet %q was delivered", line, got.raws)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%q: delivered %q, but encoding/json: %v", line, got.raws, err)
		}
		if string(m["doc"]) != got.raws[0] {
			t.Fatalf("%q: delivered %q, encoding/json finds %q", line, got.raws[0], m["doc"])
		}
	})
}

// oneSplitReader returns data in two reads, split at k.
type oneSplitReader struct {
	data []byte
	k    int
	n    int
}

func (r *oneSplitReader) Read(p []byte) (int, error) {
	if r.n >= len(r.data) {
		return 0, io.EOF
	}
	end := len(r.data)
	if r.n < r.k {
		end = r.k
	}
	n := copy(p, r.data[r.n:end])
	r.n += n
	return n, nil
}

// TestProcessChunkBoundaries splits the sample at every byte offset, with
// chunk sizes from the smallest allowed up, through the reader and the
// in-memory paths: the result must not depend on where the input was cut.
func TestProcessChunkBoundaries(t *testing.T) {
	data := []byte(genericSample)
	opts := Options{KeyField: "id", MaxRecordSize: 64, Ordered: true, Workers: 2}
	var ref collected
	refSt, err := ProcessBytes(context.Background(), data, Options{KeyField: "id", MaxRecordSize: 64}, ref.handler())
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{65, 80, 100, 129, 1000} {
		opts.ChunkSize = chunk
		for k := 0; k <= len(data); k++ {
			var c collected
			st, err := Process(context.Background(), &oneSplitReader{data: data, k: k}, opts, c.handler())
			if err != nil {
				t.Fatal(err)
			}
			if c.String() != ref.String() || rejectString(st.Rejects) != rejectString(refSt.Rejects) ||
				st.Bytes != int64(len(data)) || st.Records != refSt.Records {
				t.Fatalf("chunk %d split %d:\n%s%s\nwant\n%s%s", chunk, k, &c, rejectString(st.Rejects), &ref, rejectString(refSt.Rejects))
			}
		}
		var c collected
		if _, err := ProcessBytes(context.Background(), data, opts, c.handler()); err != nil || c.String() != ref.String() {
			t.Fatalf("ProcessBytes chunk %d: %v\n%s", chunk, err, &c)
		}
	}
	if Outstanding() != 0 {
		t.Fatalf("%d batches not returned to the pool", Outstanding())
	}
}

func TestProcessOversizeLongerThanChunk(t *testing.T) {
	big := `{"id":"big","pad":"` + strings.Repeat("x", 5000) + `"}`
	in := `{"id":"a"}` + "\n" + big + "\n" + `{"id":"b"}` + "\n" + big // last one without newline
	for _, read := range []bool{true, false} {
		var c collected
		opts := Options{KeyField: "id", MaxRecordSize: 100, ChunkSize: 256, Ordered: true}
		var st Stats
		var err error
		if read {
			st, err = Process(context.Background(), io.MultiReader(strings.NewReader(in)), opts, c.handler())
		} else {
			st, err = ProcessBytes(context.Background(), []byte(in), opts, c.handler())
		}
		msg := ErrOversize.Error() + ": a line holds at most 100 bytes"
		want := fmt.Sprintf("2@11 oversize: %s\n4@%d oversize: %s\n", msg, 11+len(big)+12, msg)
		if err != nil || strings.Join(c.keys, " ") != "a b" || rejectString(st.Rejects) != want || st.Bytes != int64(len(in)) {
			t.Errorf("read=%v: keys %q err %v stats %+v rejects\n%s", read, c.keys, err, st, rejectString(st.Rejects))
		}
	}
}

// TestProcessCRLFAtTheLimit: a record of exactly MaxRecordSize bytes is
// accepted with either line end, wherever a chunk boundary falls in it or
// its CRLF; one byte more is rejected as oversize.
func TestProcessCRLFAtTheLimit(t *testing.T) {
	const limit = 100
	rec := func(n int) string { // a record of n bytes
		return `{"id":"k","pad":"` + strings.Repeat("x", n-len(`{"id":"k","pad":""}`)) + `"}`
	}
	for _, tc := range []struct {
		n        int
		end      string
		oversize bool
	}{
		{limit, "\n", false}, {limit, "\r\n", false}, {limit + 1, "\n", true}, {limit + 1, "\r\n", true},
	} {
		in := `{"id":"a"}` + tc.end + rec(tc.n) + tc.end + `{"id":"b"}` + tc.end
		for chunk := 0; chunk <= 2*limit+8; chunk++ {
			var c collected
			opts := Options{KeyField: "id", MaxRecordSize: limit, ChunkSize: chunk, Ordered: true}
			st, err := Process(context.Background(), iotest.OneByteReader(strings.NewReader(in)), opts, c.handler())
			keys := "a k b"
			if tc.oversize {
				keys = "a b"
			}
			if err != nil || strings.Join(c.keys, " ") != keys || (st.Oversize == 1) != tc.oversize {
				t.Fatalf("%d bytes, %q, chunk %d: keys %q, err %v, stats %+v", tc.n, tc.end, chunk, c.keys, err, st)
			}
			if tc.oversize && !strings.Contains(rejectString(st.Rejects), "at most 100 bytes") {
				t.Errorf("the oversize reject does not name the limit: %s", rejectString(st.Rejects))
			}
		}
		var c collected
		st, err := ProcessBytes(context.Background(), []byte(in), Options{KeyField: "id", MaxRecordSize: limit, Ordered: true}, c.handler())
		if err != nil || (st.Oversize == 1) != tc.oversize {
			t.Errorf("ProcessBytes, %d bytes, %q: keys %q, err %v, stats %+v", tc.n, tc.end, c.keys, err, st)
		}
	}
}

func TestProcessMarketData(t *testing.T) {
	data := genRecords(2000, 5)
	var n, withFeed atomic.Int64
	var firstSym string
	h := func(_ context.Context, b *Batch) error {
		for i := range b.Records {
			if b.Records[i].Market.RawFeedState == Present {
				f, err := b.RawFeed(i)
				if err != nil || len(f) != 48 {
					return fmt.Errorf("raw feed %d: %v", len(f), err)
				}
				withFeed.Add(1)
			}
			if b.Seq == 0 && i == 0 {
				firstSym = b.Records[i].Market.Symbol.String()
			}
		}
		n.Add(int64(len(b.Records)))
		return nil
	}
	st, err := Process(context.Background(), bytes.NewReader(data), Options{Schema: MarketDataSchema, ChunkSize: 4096, MaxRecordSize: 1024, Ordered: true}, h)
	if err != nil || st.Records != 2000 || n.Load() != 2000 || st.Malformed != 0 || withFeed.Load() != 1333 {
		t.Fatalf("err %v stats %+v handled %d feeds %d rejects %s", err, st, n.Load(), withFeed.Load(), rejectString(st.Rejects))
	}
	if !strings.HasPrefix(string(data), `{"symbol":"`+firstSym+`"`) {
		t.Fatalf("first symbol %q not first in stream (ordered delivery)", firstSym)
	}
}

func TestProcessOrdered(t *testing.T) {
	data := genRecords(3000, 8)
	var last int64 = -1
	var bad atomic.Bool
	h := func(_ context.Context, b *Batch) error {
		for _, r := range b.Records {
			if r.Offset <= last {
				bad.Store(true)
			}
			last = r.Offset
		}
		return nil
	}
	st, err := ProcessBytes(context.Background(), data, Options{Schema: MarketDataSchema, ChunkSize: 2048, MaxRecordSize: 1024, Workers: 4, Ordered: true}, h)
	if err != nil || bad.Load() || st.Records != 3000 {
		t.Fatalf("err %v out-of-order %v stats %+v", err, bad.Load(), st)
	}
}

func TestProcessSkipAndFatal(t *testing.T) {
	in := "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n{\"id\":4}\n"
	perRec := PerRecord(func(_ context.Context, r *Record) error {
		if r.Key.Equal("2") {
			return fmt.Errorf("no twos: %w", ErrSkip)
		}
		return nil
	})
	st, err := ProcessBytes(context.Background(), []byte(in), Options{KeyField: "id"}, perRec)
	if err != nil || st.Records != 3 || st.Skipped != 1 || len(st.Rejects) != 1 || st.Rejects[0].Line != 2 || st.Rejects[0].Kind != KindSkipped {
		t.Fatalf("skip: err %v stats %+v", err, st)
	}

	boom := errors.New("disk on fire")
	calls := 0
	fatal := func(_ context.Context, b *Batch) error {
		if calls++; calls == 2 {
			return boom
		}
		return nil
	}
	st, err = Process(context.Background(), strings.NewReader(in), Options{KeyField: "id", ChunkSize: 20, MaxRecordSize: 9, Ordered: true, Workers: 1}, fatal)
	if !errors.Is(err, boom) || st.Records != 2 || st.Bytes != 18 { // a batch is two 9-byte lines
		t.Fatalf("fatal: err %v stats %+v; want the error and the first batch only", err, st)
	}
	if Outstanding() != 0 {
		t.Fatalf("%d batches not returned after a fatal error", Outstanding())
	}
}

// endlessReader produces records forever.
type endlessReader struct{ line []byte }

func (r *endlessReader) Read(p []byte) (int, error) {
	n := 0
	for n+len(r.line) <= len(p) {
		n += copy(p[n:], r.line)
	}
	return n, nil
}

// TestProcessCancelMidStream cancels from inside the Handler of an endless
// stream: Process must return promptly with the context error, every batch
// back in the pool, and (TestMain) no goroutine left behind.
func TestProcessCancelMidStream(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		batches := 0
		h := func(ctx context.Context, b *Batch) error {
			if batches++; batches == 5 {
				cancel()
			}
			return nil
		}
		st, err := Process(ctx, &endlessReader{line: []byte(`{"id":"x","v":[1,2,3]}` + "\n")},
			Options{KeyField: "id", ChunkSize: 4096, MaxRecordSize: 512, Ordered: ordered}, h)
		if !errors.Is(err, context.Canceled) || st.Records == 0 {
			t.Fatalf("ordered=%v: err %v stats %+v", ordered, err, st)
		}
		if Outstanding() != 0 {
			t.Fatalf("%d batches not returned after cancellation", Outstanding())
		}
	}
}

// TestProcessBackpressure: a handler that blocks holds the whole pipeline;
// the reader can never take more than InFlight batches, so reads stop.
func TestProcessBackpressure(t *testing.T) {
	release := make(chan struct{})
	var maxOut atomic.Int64
	h := func(ctx context.Context, b *Batch) error {
		maxOut.Store(max(maxOut.Load(), Outstanding()))
		<-release
		return nil
	}
	r := &countingReader{r: &endlessReader{line: []byte(`{"id":"x"}` + "\n")}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = Process(ctx, r, Options{KeyField: "id", ChunkSize: 1024, MaxRecordSize: 100, InFlight: 3, Workers: 1}, h)
	})
	// The handler is blocked on the first batch: once the pipeline has
	// filled every slot, the reader stops. Wait for reads to plateau by
	// letting one batch through at a time and checking the bound each time.
	for range 20 {
		release <- struct{}{}
	}
	cancel()
	close(release)
	wg.Wait()
	if got := maxOut.Load(); got > 3 {
		t.Fatalf("%d batches out at once, want ≤ InFlight (3)", got)
	}
	if read := r.n.Load(); read > 1024*(20+3+1) {
		t.Fatalf("read %d bytes for 21 handled batches: reader ran ahead of the handler", read)
	}
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func TestProcessFileMapped(t *testing.T) {
	data := genRecords(500, 11)
	path := filepath.Join(t.TempDir(), "md.ndjson")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	h := func(_ context.Context, b *Batch) error { n.Add(int64(len(b.Records))); return nil }
	st, err := ProcessFile(context.Background(), path, Options{Schema: MarketDataSchema, ChunkSize: 8192, MaxRecordSize: 1024}, h)
	if err != nil || st.Records != 500 || n.Load() != 500 || st.Bytes != int64(len(data)) {
		t.Fatalf("err %v stats %+v", err, st)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := ProcessFile(context.Background(), empty, Options{}, h); err != nil || st.Records != 0 {
		t.Fatalf("empty file (read fallback): %v %+v", err, st)
	}
	if _, err := ProcessFile(context.Background(), filepath.Join(t.TempDir(), "missing"), Options{}, h); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestProcessMaxRejects(t *testing.T) {
	in := strings.Repeat("nope\n", 50)
	st, err := ProcessBytes(context.Background(), []byte(in), Options{MaxRejects: 3, ChunkSize: 64, MaxRecordSize: 16}, func(context.Context, *Batch) error { return nil })
	if err != nil || st.Malformed != 50 || len(st.Rejects) != 3 || st.Rejects[2].Line != 3 {
		t.Fatalf("err %v stats %+v", err, st)
	}
}

// TestKeyLoneSurrogate: a key with an unpaired surrogate escape is
// rejected, where it was stored under U+FFFD in its place, so that two
// keys differing only there named one document; a pair is a character.
func TestKeyLoneSurrogate(t *testing.T) {
	in := `{"k":"a\ud800x"}` + "\n" + `{"k":"a\udc00"}` + "\n" + `{"k":"a\ud800\u0041"}` + "\n" +
		`{"k":"a\ud83d\ude00"}` + "\n" + `{"k":"a\\ud800"}` + "\n"
	var c collected
	st, err := ProcessBytes(context.Background(), []byte(in), Options{KeyField: "k", Ordered: true}, c.handler())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.keys, " ") != "a😀 a\\ud800" || st.Malformed != 3 || !strings.Contains(st.Rejects[0].Reason(), "unpaired UTF-16 surrogate") {
		t.Errorf("keys %q, stats %+v:\n%s", c.keys, st, rejectString(st.Rejects))
	}
	// A MarketData symbol names its document too.
	rec := func(sym string) string {
		return `{"symbol":"` + sym + `","price":1,"volume":1,"metadata":{"exchange":"X","data_source":"y"}}` + "\n"
	}
	var syms []string
	st, err = ProcessBytes(context.Background(), []byte(rec(`A\ud800`)+rec(`A\udc00`)+rec(`A\ud83d\ude00`)),
		Options{Schema: MarketDataSchema, Ordered: true}, func(_ context.Context, b *Batch) error {
			for _, r := range b.Records {
				syms = append(syms, r.Market.Symbol.String())
			}
			return nil
		})
	if err != nil || strings.Join(syms, " ") != "A😀" || st.Malformed != 2 || !strings.Contains(st.Rejects[0].Reason(), "unpaired UTF-16 surrogate") {
		t.Errorf("symbols %q, stats %+v, %v:\n%s", syms, st, err, rejectString(st.Rejects))
	}
}
