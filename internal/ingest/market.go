package ingest

import (
	"encoding/base64"
	"fmt"

	"github.com/cairnstore/cairn/internal/streambuf"
)

// Presence says whether an optional field was absent, null or present (a
// present string may still be empty).
type Presence uint8

// The states of an optional field.
const (
	Absent Presence = iota
	Null
	Present
)

// MarketData is the MarketData schema's record (docs/ingest.md), flattened (metadata's fields sit in the
// struct) and decoded without copying. Symbol, ExtraInfo and the raw feed are
// views into the input or, when they held escapes, into the batch arena:
// valid until the batch's Buffer is Reset (for Process: until the Handler
// returns). Exchange and DataSource are interned and never expire, unless the
// interner was full, in which case they are views like the rest.
type MarketData struct {
	Symbol         streambuf.View
	Price          float64
	Volume         uint64
	Exchange       streambuf.View // metadata.exchange
	DataSource     streambuf.View // metadata.data_source
	ExtraInfo      streambuf.View // metadata.extra_info, optional
	ExtraInfoState Presence
	RawFeedState   Presence
	rawFeed        streambuf.View // raw_feed's text, still base64
	rawFeedAt      int            // where raw_feed's value starts in the decoded input
}

// RawFeedBase64 returns raw_feed's undecoded (but unescaped) base64 text.
func (m *MarketData) RawFeedBase64() streambuf.View { return m.rawFeed }

// AppendRawFeed decodes raw_feed (standard base64, padded; CR and LF ignored,
// as encoding/json does for []byte) and appends it to dst. Decoding is lazy:
// records whose feed is never asked for never pay for it. An absent or null
// feed appends nothing.
func (m *MarketData) AppendRawFeed(dst []byte) ([]byte, error) {
	src := m.rawFeed.Bytes()
	if len(src) == 0 {
		return dst, nil
	}
	n := base64.StdEncoding.DecodedLen(len(src))
	dst = growSlice(dst, n)
	got, err := base64.StdEncoding.Decode(dst[len(dst):len(dst)+n], src)
	if err != nil {
		return dst, &FieldError{Field: "raw_feed", Msg: fmt.Sprintf("invalid base64: %v", err)}
	}
	return dst[:len(dst)+got], nil
}

func growSlice(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), 2*cap(b)+n)
	copy(nb, b)
	return nb
}

// field identifies a MarketData key; fieldNone is an unknown key.
type field uint8

const (
	fieldNone field = iota
	fSymbol
	fPrice
	fVolume
	fMetadata
	fRawFeed
	fExchange
	fDataSource
	fExtraInfo
)

var fieldName = [...]string{
	fSymbol: "symbol", fPrice: "price", fVolume: "volume", fMetadata: "metadata",
	fRawFeed: "raw_feed", fExchange: "metadata.exchange",
	fDataSource: "metadata.data_source", fExtraInfo: "metadata.extra_info",
}

// topField matches keys exactly (case-sensitive, unlike encoding/json).
func topField(k []byte) field {
	switch string(k) { // compiled to length+memcmp checks, no allocation
	case "symbol":
		return fSymbol
	case "price":
		return fPrice
	case "volume":
		return fVolume
	case "metadata":
		return fMetadata
	case "raw_feed":
		return fRawFeed
	}
	return fieldNone
}

func metaField(k []byte) field {
	switch string(k) {
	case "exchange":
		return fExchange
	case "data_source":
		return fDataSource
	case "extra_info":
		return fExtraInfo
	}
	return fieldNone
}

func typeName(c byte) string {
	switch c {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// fastTopKey recognises a known key at b[i] == '"' written without escapes
// and followed directly by ':', the overwhelmingly common shape, with one
// constant compare (the compiler turns it into word loads) instead of a
// string scan. It returns the index after the ':' and whitespace, or 0 when
// the slow path must decide.
func fastTopKey(b []byte, i int) (field, int) {
	r := b[i:]
	if len(r) < 12 || r[0] != '"' {
		return fieldNone, 0
	}
	switch r[1] {
	case 's':
		if string(r[1:9]) == `symbol":` {
			return fSymbol, skipWS(b, i+9)
		}
	case 'p':
		if string(r[1:8]) == `price":` {
			return fPrice, skipWS(b, i+8)
		}
	case 'v':
		if string(r[1:9]) == `volume":` {
			return fVolume, skipWS(b, i+9)
		}
	case 'm':
		if string(r[1:11]) == `metadata":` {
			return fMetadata, skipWS(b, i+11)
		}
	case 'r':
		if string(r[1:11]) == `raw_feed":` {
			return fRawFeed, skipWS(b, i+11)
		}
	}
	return fieldNone, 0
}

// fastMetaKey is fastTopKey for the metadata object.
func fastMetaKey(b []byte, i int) (field, int) {
	r := b[i:]
	if len(r) < 15 || r[0] != '"' {
		return fieldNone, 0
	}
	switch r[1] {
	case 'e':
		if string(r[1:11]) == `exchange":` {
			return fExchange, skipWS(b, i+11)
		}
		if string(r[1:13]) == `extra_info":` {
			return fExtraInfo, skipWS(b, i+13)
		}
	case 'd':
		if string(r[1:14]) == `data_source":` {
			return fDataSource, skipWS(b, i+14)
		}
	}
	return fieldNone, 0
}
