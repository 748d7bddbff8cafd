package ingest

import "github.com/cairnstore/cairn/internal/streambuf"

// str decodes a required string at b[i]: a view of the input when it has no
// escapes, else its unescaped form in the arena.
func (d *Decoder) str(b []byte, i int, f field, depth int) (streambuf.View, int, error) {
	if b[i] != '"' {
		return streambuf.View{}, i, d.typeErr(b, i, depth, fieldName[f], "string")
	}
	j := plainRun(b, i+1)
	if j < len(b) && b[j] == '"' {
		return d.buf.View(b[i+1 : j]), j + 1, nil
	}
	end, esc, c := scanString(b, j) // plainRun saw no escape before j
	if c != ok {
		return streambuf.View{}, end, syntaxErr(c, end, d.base)
	}
	s := b[i+1 : end-1]
	if !esc {
		return d.buf.View(s), end, nil
	}
	if f == fSymbol && loneSurrogate(s) { // the symbol names the document: see keyFinder.find
		return streambuf.View{}, end, &FieldError{Field: fieldName[f], Offset: d.base + int64(i), Msg: errLoneSurrogate}
	}
	return d.buf.Commit(unescape(d.buf.Grow(len(s)), s)), end, nil
}

// optStr decodes an optional string: null or a string.
func (d *Decoder) optStr(b []byte, i int, f field, depth int) (streambuf.View, Presence, int, error) {
	if b[i] == 'n' {
		end, c := scanLiteral(b, i)
		if c != ok {
			return streambuf.View{}, Absent, end, syntaxErr(c, end, d.base)
		}
		return streambuf.View{}, Null, end, nil
	}
	v, end, err := d.str(b, i, f, depth)
	return v, Present, end, err
}

// internStr decodes a string and interns it, falling back to the view when
// the interner is full.
func (d *Decoder) internStr(b []byte, i int, f field) (streambuf.View, int, error) {
	v, end, err := d.str(b, i, f, 2)
	if err != nil {
		return v, end, err
	}
	s := v.Bytes()
	if len(s) == 0 {
		return streambuf.View{}, end, nil
	}
	h := (len(s)*131 + int(s[0])*31 + int(s[len(s)-1])) & (len(d.recent) - 1)
	if r := d.recent[h]; r == string(s) {
		return streambuf.Permanent(r), end, nil
	}
	if r, ok := d.buf.Intern(s); ok {
		d.recent[h] = r
		return streambuf.Permanent(r), end, nil
	}
	return v, end, nil
}

// price decodes the price at b[i]. A plain decimal ("187.25", "-0.5", "42")
// is validated and converted in the same pass (see fastFloat); anything else
// (an exponent, many digits, a syntax error) takes the general path.
func (d *Decoder) price(b []byte, i int, m *MarketData) (int, error) {
	if f, end := fastFloat(b, i); end > 0 {
		m.Price = f
		return end, nil
	}
	if c := b[i]; c != '-' && !isDigit(c) {
		return i, d.typeErr(b, i, 1, fieldName[fPrice], "number")
	}
	end, c := scanNumber(b, i)
	if c != ok {
		return end, syntaxErr(c, end, d.base)
	}
	f, fits := parseFloat(b[i:end])
	if !fits {
		return end, &FieldError{Field: "price", Offset: d.base + int64(i), Msg: "out of float64 range"}
	}
	m.Price = f
	return end, nil
}

// volume decodes the volume at b[i]: a plain integer of up to 19 digits
// (which always fits uint64) in one pass, anything else on the general path,
// which also explains why a number is not a valid volume.
func (d *Decoder) volume(b []byte, i int, m *MarketData) (int, error) {
	if v, end := fastUint(b, i); end > 0 {
		m.Volume = v
		return end, nil
	}
	if c := b[i]; c != '-' && !isDigit(c) {
		return i, d.typeErr(b, i, 1, fieldName[fVolume], "number")
	}
	end, c := scanNumber(b, i)
	if c != ok {
		return end, syntaxErr(c, end, d.base)
	}
	v, ve := parseUint(b[i:end])
	if ve != volOK {
		return end, &FieldError{Field: "volume", Offset: d.base + int64(i), Msg: volumeMsg[ve]}
	}
	m.Volume = v
	return end, nil
}
