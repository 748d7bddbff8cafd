package ingest

import (
	"github.com/cairnstore/cairn/internal/streambuf"
)

// Decoder decodes MarketData records. It writes escaped strings into its
// Buffer's short-lived arena and interns exchange and data_source in the
// Buffer's long-lived region. A Decoder is not safe for concurrent use; give
// each goroutine its own.
type Decoder struct {
	buf      *streambuf.Buffer
	maxDepth int
	base     int64  // added to error offsets (the record's place in a stream)
	keyBuf   []byte // scratch for keys that hold escapes
	feed     []byte // scratch for checkRawFeed
	// recent is a small direct-mapped cache in front of the interner: a hit
	// is one length check and one memcmp instead of a map hash.
	recent [64]string
}

// NewDecoder returns a Decoder writing into buf, with DefaultMaxDepth.
func NewDecoder(buf *streambuf.Buffer) *Decoder {
	return &Decoder{buf: buf, maxDepth: DefaultMaxDepth}
}

// SetMaxDepth sets the nesting limit (values < 2 mean 2: a record is an object
// holding the metadata object).
func (d *Decoder) SetMaxDepth(n int) { d.maxDepth = max(n, 2) }

// Decode decodes b, which must hold exactly one JSON object (whitespace
// around it is allowed), into m. The whole input is validated as strictly as
// Validate does. Errors are *SyntaxError or *FieldError with offsets relative
// to b. Views in m are valid until the Decoder's Buffer is Reset.
func (d *Decoder) Decode(b []byte, m *MarketData) error {
	d.base = 0
	end, err := d.decodeAt(b, skipWS(b, 0), m)
	if err != nil {
		if _, shape := err.(*FieldError); shape {
			// Trailing garbage after a wrongly shaped value is still a syntax error.
			if verr := ValidateDepth(b, d.maxDepth); verr != nil {
				return verr
			}
		}
		return err
	}
	if end = skipWS(b, end); end != len(b) {
		return syntaxErr(errTrailing, end, 0)
	}
	return nil
}

// decodeAt decodes the value at b[i] and returns the index after it. When
// the value is valid JSON but the wrong shape, a syntax error later in the
// value still wins, so that "is it JSON?" has one answer everywhere.
func (d *Decoder) decodeAt(b []byte, i int, m *MarketData) (int, error) {
	end, err := d.object(b, i, m)
	if _, shape := err.(*FieldError); shape { // a type assertion: errors.As would make every call allocate
		if e, c := skipValue(b, i, d.maxDepth); c != ok {
			return e, syntaxErr(c, e, d.base)
		}
	}
	return end, err
}

func (d *Decoder) object(b []byte, i int, m *MarketData) (int, error) {
	*m = MarketData{}
	if i >= len(b) {
		return i, syntaxErr(errEOF, i, d.base)
	}
	if b[i] != '{' {
		return i, d.typeErr(b, i, 0, "$", "object")
	}
	var seen, metaSeen uint32
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, d.missing(seen, metaSeen, i)
	}
	for {
		f, j := fastTopKey(b, i)
		if j == 0 || j >= len(b) { // the slow path reports errors, including EOF
			key, k, err := d.key(b, i)
			if err != nil {
				return k, err
			}
			f, j = topField(key), k
		}
		var err error
		switch f {
		case fSymbol:
			m.Symbol, i, err = d.str(b, j, f, 1)
		case fPrice:
			i, err = d.price(b, j, m)
		case fVolume:
			i, err = d.volume(b, j, m)
		case fMetadata:
			i, err = d.metadata(b, j, m, &metaSeen)
		case fRawFeed:
			m.rawFeedAt = j
			m.rawFeed, m.RawFeedState, i, err = d.optStr(b, j, f, 1)
		default:
			i, err = d.skip(b, j, 1)
		}
		if err != nil {
			return i, err
		}
		seen |= 1 << f
		if i < len(b) && b[i] == ',' { // the usual case, without a call
			i = skipWS(b, i+1)
			continue
		}
		if i, err = d.next(b, i); err != nil || b[i-1] == '}' {
			if err == nil {
				err = d.missing(seen, metaSeen, i-1)
			}
			return i, err
		}
	}
}

// key scans an object key at b[i] and the ':' after it, returning the
// (unescaped) key and the index of the value.
func (d *Decoder) key(b []byte, i int) ([]byte, int, error) {
	if i >= len(b) {
		return nil, i, syntaxErr(errEOF, i, d.base)
	}
	if b[i] != '"' {
		return nil, i, syntaxErr(errExpectKey, i, d.base)
	}
	end, esc, c := scanString(b, i+1)
	if c != ok {
		return nil, end, syntaxErr(c, end, d.base)
	}
	key := b[i+1 : end-1]
	if esc {
		d.keyBuf = unescape(d.keyBuf[:0], key)
		key = d.keyBuf
	}
	if end = skipWS(b, end); end >= len(b) {
		return nil, end, syntaxErr(errEOF, end, d.base)
	}
	if b[end] != ':' {
		return nil, end, syntaxErr(errExpectColon, end, d.base)
	}
	end = skipWS(b, end+1)
	if end >= len(b) {
		return nil, end, syntaxErr(errEOF, end, d.base)
	}
	return key, end, nil
}

// next consumes the ',' or '}' after a member. When it returns a nil error,
// b[i-1] is the byte it consumed and, after ',', i is at the next key.
func (d *Decoder) next(b []byte, i int) (int, error) {
	if i = skipWS(b, i); i >= len(b) {
		return i, syntaxErr(errEOF, i, d.base)
	}
	switch b[i] {
	case ',':
		return skipWS(b, i+1), nil
	case '}':
		return i + 1, nil
	}
	return i, syntaxErr(errExpectCommaObj, i, d.base)
}

func (d *Decoder) metadata(b []byte, i int, m *MarketData, seen *uint32) (int, error) {
	if b[i] != '{' {
		return i, d.typeErr(b, i, 1, fieldName[fMetadata], "object")
	}
	if d.maxDepth < 2 {
		return i, syntaxErr(errDepth, i, d.base)
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		f, j := fastMetaKey(b, i)
		if j == 0 || j >= len(b) { // the slow path reports errors, including EOF
			key, k, err := d.key(b, i)
			if err != nil {
				return k, err
			}
			f, j = metaField(key), k
		}
		var err error
		switch f {
		case fExchange:
			m.Exchange, i, err = d.internStr(b, j, f)
		case fDataSource:
			m.DataSource, i, err = d.internStr(b, j, f)
		case fExtraInfo:
			m.ExtraInfo, m.ExtraInfoState, i, err = d.optStr(b, j, f, 2)
		default:
			i, err = d.skip(b, j, 2)
		}
		if err != nil {
			return i, err
		}
		*seen |= 1 << f
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if i, err = d.next(b, i); err != nil || b[i-1] == '}' {
			return i, err
		}
	}
}

// missing names the first required field that was not seen, or returns nil.
func (d *Decoder) missing(seen, metaSeen uint32, at int) error {
	const top, meta = 1<<fSymbol | 1<<fPrice | 1<<fVolume | 1<<fMetadata, 1<<fExchange | 1<<fDataSource
	if seen&top == top && metaSeen&meta == meta {
		return nil
	}
	for _, f := range [...]field{fSymbol, fPrice, fVolume, fMetadata} {
		if seen&(1<<f) == 0 {
			return &FieldError{Field: fieldName[f], Offset: d.base + int64(at), Msg: "required field missing"}
		}
	}
	for _, f := range [...]field{fExchange, fDataSource} {
		if metaSeen&(1<<f) == 0 {
			return &FieldError{Field: fieldName[f], Offset: d.base + int64(at), Msg: "required field missing"}
		}
	}
	return nil
}

// skip validates and skips an unknown member's value at the given depth.
func (d *Decoder) skip(b []byte, i, depth int) (int, error) {
	end, c := skipValue(b, i, d.maxDepth-depth)
	if c != ok {
		return end, syntaxErr(c, end, d.base)
	}
	return end, nil
}

// typeErr reports a wrong-typed value at b[i], after making sure the value
// itself is valid JSON (a syntax error is reported in preference).
func (d *Decoder) typeErr(b []byte, i, depth int, name, want string) error {
	if end, c := skipValue(b, i, d.maxDepth-depth); c != ok {
		return syntaxErr(c, end, d.base)
	}
	return &FieldError{Field: name, Offset: d.base + int64(i), Msg: "expected " + want + ", got " + typeName(b[i])}
}

// checkRawFeed reports raw_feed's base64 that does not decode as a field
// error at its value. Decode leaves it undecoded (AppendRawFeed decodes it
// when asked); a stream checks it, so that a record it accepts has a feed
// that decodes.
func (d *Decoder) checkRawFeed(m *MarketData) error {
	if m.RawFeedState != Present {
		return nil
	}
	var err error
	d.feed, err = m.AppendRawFeed(d.feed[:0])
	if fe, ok := err.(*FieldError); ok {
		fe.Offset = d.base + int64(m.rawFeedAt)
	}
	return err
}
