package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cairnstore/cairn/internal/streambuf"
)

const goodRecord = `{"symbol":"AAPL","price":187.25,"volume":1200,"metadata":{"exchange":"NASDAQ","data_source":"sip","extra_info":"x"},"raw_feed":"aGVsbG8="}`

func decode(t testing.TB, in string) (*MarketData, *streambuf.Buffer, error) {
	t.Helper()
	buf := streambuf.New(streambuf.Config{})
	var m MarketData
	err := NewDecoder(buf).Decode([]byte(in), &m)
	return &m, buf, err
}

func TestDecodeMarketData(t *testing.T) {
	in := []byte(goodRecord)
	buf := streambuf.New(streambuf.Config{})
	var m MarketData
	if err := NewDecoder(buf).Decode(in, &m); err != nil {
		t.Fatal(err)
	}
	if !m.Symbol.Equal("AAPL") || m.Price != 187.25 || m.Volume != 1200 || !m.Exchange.Equal("NASDAQ") ||
		!m.DataSource.Equal("sip") || !m.ExtraInfo.Equal("x") || m.ExtraInfoState != Present || m.RawFeedState != Present {
		t.Fatalf("decoded %+v", m)
	}
	if &m.Symbol.Bytes()[0] != &in[11] {
		t.Errorf("symbol without escapes was copied; want a view of the input")
	}
	feed, err := m.AppendRawFeed(nil)
	if err != nil || string(feed) != "hello" {
		t.Errorf("AppendRawFeed = %q, %v", feed, err)
	}
	if got := buf.Persistent(); len(got) != 2 || got[0] != "NASDAQ" || got[1] != "sip" {
		t.Errorf("interned %q, want [NASDAQ sip]", got)
	}
}

func TestDecodeOptionalFields(t *testing.T) {
	base := `{"symbol":"A","price":1,"volume":1,"metadata":{"exchange":"E","data_source":"D"%s}%s}`
	tests := []struct {
		meta, top       string
		extra, rawState Presence
		extraVal        string
	}{
		{"", "", Absent, Absent, ""},
		{`,"extra_info":null`, `,"raw_feed":null`, Null, Null, ""},
		{`,"extra_info":""`, `,"raw_feed":""`, Present, Present, ""},
		{`,"extra_info":"a\nb"`, `,"raw_feed":"QQ=="`, Present, Present, "a\nb"},
	}
	for _, tc := range tests {
		in := strings.Replace(strings.Replace(base, "%s", tc.meta, 1), "%s", tc.top, 1)
		m, _, err := decode(t, in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if m.ExtraInfoState != tc.extra || m.RawFeedState != tc.rawState || !m.ExtraInfo.Equal(tc.extraVal) {
			t.Errorf("%s: extra %v %q raw %v", in, m.ExtraInfoState, m.ExtraInfo.Bytes(), m.RawFeedState)
		}
	}
}

func TestDecodeEscapesGoToArena(t *testing.T) {
	m, buf, err := decode(t, `{"sym\u0062ol":"A\u00e9\ud83d\ude00\/x","price":1,"volume":1,"metadata":{"exchange":"N\u0059SE\uDC00","data_source":"d"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Aé😀/x"; !m.Symbol.Equal(want) {
		t.Errorf("symbol = %q, want %q", m.Symbol.Bytes(), want)
	}
	if buf.ArenaBytes() == 0 || !m.Exchange.Equal("NYSE\uFFFD") {
		t.Errorf("arena %d bytes, exchange %q (lone surrogate → U+FFFD)", buf.ArenaBytes(), m.Exchange.Bytes())
	}
	// In the symbol, which names the document, a lone surrogate is refused.
	if _, _, err := decode(t, `{"symbol":"A\uDC00","price":1,"volume":1,"metadata":{"exchange":"N","data_source":"d"}}`); err == nil ||
		!strings.Contains(err.Error(), "unpaired UTF-16 surrogate") {
		t.Errorf("a symbol with a lone surrogate: %v", err)
	}
}

func TestDecodeInternerBoundFallsBackToViews(t *testing.T) {
	buf := streambuf.New(streambuf.Config{MaxInterned: 1})
	d := NewDecoder(buf)
	var m MarketData
	for _, ex := range []string{"NYSE", "LSE", "TSE"} {
		in := `{"symbol":"A","price":1,"volume":1,"metadata":{"exchange":"` + ex + `","data_source":"NYSE"}}`
		if err := d.Decode([]byte(in), &m); err != nil || !m.Exchange.Equal(ex) {
			t.Fatalf("%s: %v, exchange %q", ex, err, m.Exchange.Bytes())
		}
	}
	if got := buf.Persistent(); len(got) != 1 {
		t.Fatalf("interner grew past its bound: %q", got)
	}
}

func TestDecodeNumbers(t *testing.T) {
	for _, p := range []string{"0", "-0", "1", "187.25", "0.1", "123456789012345.6", "1e22", "1.7976931348623157e308",
		"4.9e-324", "2.4e-324", "1e-400", "9007199254740993", "0.30000000000000004", "123.456e-7", "-99.99"} {
		m, _, err := decode(t, `{"symbol":"A","price":`+p+`,"volume":1,"metadata":{"exchange":"E","data_source":"D"}}`)
		want, _ := strconv.ParseFloat(p, 64)
		if err != nil || math.Float64bits(m.Price) != math.Float64bits(want) {
			t.Errorf("price %s = %v (%v), want %v", p, m.Price, err, want)
		}
	}
	tests := []struct{ field, val, msg string }{
		{"price", "1e400", "out of float64 range"},
		{"price", `"1"`, "expected number, got string"},
		{"volume", "-1", "negative"},
		{"volume", "1.5", "integer"},
		{"volume", "1e3", "integer"},
		{"volume", "18446744073709551616", "overflows"},
		{"volume", "null", "expected number, got null"},
		{"symbol", "1", "expected string, got number"},
		{"metadata", "[]", "expected object, got array"},
	}
	for _, tc := range tests {
		in := strings.Replace(`{"symbol":"A","price":1,"volume":1,"metadata":{"exchange":"E","data_source":"D"}}`,
			`"`+tc.field+`":`+map[string]string{"price": "1", "volume": "1", "symbol": `"A"`, "metadata": `{"exchange":"E","data_source":"D"}`}[tc.field],
			`"`+tc.field+`":`+tc.val, 1)
		_, _, err := decode(t, in)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Msg, tc.msg) {
			t.Errorf("%s=%s: %v, want field error %q", tc.field, tc.val, err, tc.msg)
		}
	}
	m, _, err := decode(t, `{"symbol":"A","price":1,"volume":18446744073709551615,"metadata":{"exchange":"E","data_source":"D"}}`)
	if err != nil || m.Volume != math.MaxUint64 {
		t.Errorf("max volume: %v %v", m.Volume, err)
	}
}

func TestDecodeShapeErrors(t *testing.T) {
	tests := []struct{ in, field string }{
		{`{"price":1,"volume":1,"metadata":{"exchange":"E","data_source":"D"}}`, "symbol"},
		{`{"symbol":"A","price":1,"volume":1,"metadata":{"exchange":"E"}}`, "metadata.data_source"},
		{`{"symbol":"A","price":1,"volume":1}`, "metadata"},
		{`{"symbol":"A","price":1,"volume":1,"metadata":{"exchange":3,"data_source":"D"}}`, "metadata.exchange"},
		{`[]`, "$"},
		{`{"Symbol":"A","price":1,"volume":1,"metadata":{"exchange":"E","data_source":"D"}}`, "symbol"},
	}
	for _, tc := range tests {
		_, _, err := decode(t, tc.in)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: %v, want field error on %s", tc.in, err, tc.field)
		}
	}
	// A syntax error anywhere wins over a shape error before it.
	_, _, err := decode(t, `{"symbol":1,"price":01}`)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != 20 {
		t.Errorf("got %v, want syntax error at 20", err)
	}
}

func TestDecodeSkipsUnknownFields(t *testing.T) {
	m, buf, err := decode(t, `{"x":{"deep":[1,{"y":"z"}]},"symbol":"A","price":2,"volume":3,"metadata":{"u":[],"exchange":"E","data_source":"D"},"z":null}`)
	if err != nil || !m.Symbol.Equal("A") || buf.ArenaBytes() != 0 {
		t.Fatalf("got %+v, %v, arena %d", m, err, buf.ArenaBytes())
	}
	if _, _, err := decode(t, `{"x":[1,]}`); err == nil {
		t.Fatalf("invalid unknown field accepted")
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	lines := bytes.Split(bytes.TrimSpace(genRecords(64, 3)), []byte("\n"))
	buf := streambuf.New(streambuf.Config{})
	d := NewDecoder(buf)
	var m MarketData
	for _, l := range lines { // warm the interner and arena
		if err := d.Decode(l, &m); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	buf.Reset()
	allocs := testing.AllocsPerRun(20, func() {
		for _, l := range lines {
			_ = d.Decode(l, &m)
		}
		buf.Reset()
	})
	if allocs != 0 {
		t.Fatalf("decoding %d records allocates %v times", len(lines), allocs)
	}
}

// refMarket is MarketData as an ordinary allocating struct, for encoding/json.
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

// caseVariantKeys reports whether an object key differs from a MarketData
// field name only by case: encoding/json matches those, we do not.
func caseVariantKeys(b []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return false
	}
	names := []string{"symbol", "price", "volume", "metadata", "raw_feed", "exchange", "data_source", "extra_info"}
	check := func(m map[string]json.RawMessage) bool {
		for k := range m {
			for _, n := range names {
				if k != n && strings.EqualFold(k, n) {
					return true
				}
			}
		}
		return false
	}
	if check(top) {
		return true
	}
	var meta map[string]json.RawMessage
	for k, v := range top {
		if k == "metadata" && json.Unmarshal(v, &meta) == nil && check(meta) {
			return true
		}
	}
	return false
}

// FuzzMarketData is differential against encoding/json into refMarket:
// whenever we accept a record, encoding/json accepts it too and produces the
// same values; whenever encoding/json finds a syntax error (on valid UTF-8),
// so do we. We may reject more (case-variant keys, nulls in required fields,
// missing fields), which encoding/json silently accepts.
func FuzzMarketData(f *testing.F) {
	f.Add([]byte(goodRecord))
	for _, l := range bytes.Split(bytes.TrimSpace(genRecords(12, 9)), []byte("\n")) {
		f.Add(l)
	}
	f.Add([]byte(`{"symbol":"\uD800","price":-0,"volume":0,"metadata":{"exchange":"","data_source":"","extra_info":null},"raw_feed":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _, err := decode(t, string(b))
		var ref refMarket
		refErr := json.Unmarshal(b, &ref)
		var se *SyntaxError
		if errors.As(err, &se) != (ValidateDepth(b, DefaultMaxDepth) != nil) {
			t.Fatalf("%q: decoder %v, but Validate disagrees", b, err)
		}
		if err != nil {
			if refErr != nil || !utf8.Valid(b) {
				return
			}
			if errors.As(err, &se) && json.Valid(b) {
				t.Fatalf("%q: syntax error %v, encoding/json accepts it", b, err)
			}
			return
		}
		if caseVariantKeys(b) {
			return
		}
		feed, feedErr := m.AppendRawFeed(nil)
		if refErr != nil {
			if feedErr != nil { // encoding/json decodes base64 eagerly, we lazily
				return
			}
			t.Fatalf("%q: accepted, encoding/json says %v", b, refErr)
		}
		extra := m.ExtraInfoState == Present
		if m.Symbol.String() != ref.Symbol || math.Float64bits(m.Price) != math.Float64bits(ref.Price) ||
			m.Volume != ref.Volume || m.Exchange.String() != ref.Metadata.Exchange ||
			m.DataSource.String() != ref.Metadata.DataSource || extra != (ref.Metadata.ExtraInfo != nil) ||
			(extra && m.ExtraInfo.String() != *ref.Metadata.ExtraInfo) || !bytes.Equal(feed, ref.RawFeed) || feedErr != nil {
			t.Fatalf("%q:\n got %+v feed %q %v\nwant %+v", b, m, feed, feedErr, ref)
		}
	})
}
