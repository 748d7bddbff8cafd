package ingest

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// The scanners below work on (input, index) pairs and return the index just
// past what they consumed plus a code. On error the index is the offending
// byte's offset.

// isSpace marks JSON whitespace (RFC 8259 §2: space, tab, LF, CR).
var isSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && isSpace[b[i]] { // the first test settles the usual case
		i++
	}
	return i
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special returns a mask whose lowest set bit is the high bit of the lowest
// byte of w that needs attention inside a string: '"', '\\', a control
// character (< 0x20) or a non-ASCII byte. Bytes above that one may be falsely
// flagged (borrow propagation), so only the lowest is trusted.
//
// It is the classic has-zero test without its "&^ x" terms: x-0x01 sets a
// byte's high bit when the byte is 0 (here: '"' or '\\') or at least 0x81,
// and w-0x20 when the byte is below 0x20 or at least 0xA0. The false hits
// are all bytes >= 0x80, flagged anyway by "| w". A borrow only starts at a
// truly flagged byte, so nothing below the lowest one is disturbed.
func special(w uint64) uint64 {
	q := w ^ (lsb * '"')
	s := w ^ (lsb * '\\')
	return ((q - lsb) | (s - lsb) | (w - lsb*0x20) | w) & msb
}

// needsCare is the scalar form of special.
var needsCare = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= 0x80
	}
	return t
}()

// scanString scans a string whose opening quote is at b[i-1]. It returns the
// index after the closing quote and whether the string holds escapes. The
// string is fully validated: escapes, control characters and UTF-8.
func scanString(b []byte, i int) (int, bool, code) {
	esc := false
	for {
		// Eight bytes at a time until something needs a closer look; a
		// closing quote found this way returns at once.
		for i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			m := special(w)
			if m == 0 {
				i += 8
				continue
			}
			k := bits.TrailingZeros64(m)
			i += k >> 3
			if byte(w>>(k&^7)) == '"' {
				return i + 1, esc, ok
			}
			break
		}
		for i < len(b) && !needsCare[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, esc, errEOF
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, ok
		case c == '\\':
			n, cd := scanEscape(b, i)
			if cd != ok {
				return n, esc, cd
			}
			esc, i = true, n
		case c < 0x20:
			return i, esc, errControl
		default:
			n := validRune(b, i)
			if n == 0 {
				return i, esc, errBadUTF8
			}
			i += n
		}
	}
}

// validRune returns the length of the valid UTF-8 sequence at b[i] (a
// non-ASCII lead byte), or 0 if it is invalid (RFC 8259 §8.1 requires UTF-8;
// utf8.DecodeRune rejects overlongs and encoded surrogates).
func validRune(b []byte, i int) int {
	r, n := utf8.DecodeRune(b[i:])
	if r == utf8.RuneError && n == 1 {
		return 0
	}
	return n
}

// scanEscape validates the escape at b[i] == '\\' and returns the index
// after it.
func scanEscape(b []byte, i int) (int, code) {
	if i+1 >= len(b) {
		return len(b), errEOF
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2, ok
	case 'u':
		if i+6 > len(b) {
			if allHex(b[i+2:]) {
				return len(b), errEOF
			}
			return i, errBadEscape
		}
		if !allHex(b[i+2 : i+6]) {
			return i, errBadEscape
		}
		return i + 6, ok
	}
	return i, errBadEscape
}

func allHex(p []byte) bool {
	for _, c := range p {
		if hexVal[c] < 0 {
			return false
		}
	}
	return true
}

var hexVal = func() (t [256]int8) {
	for c := range 256 {
		t[c] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = int8(c - 'a' + 10)
		t[c-'a'+'A'] = int8(c - 'a' + 10)
	}
	return t
}()

// scanNumber validates the number starting at b[i] (RFC 8259 §6 grammar:
// no leading zeros, no leading '+', digits required around '.' and after
// 'e').
func scanNumber(b []byte, i int) (int, code) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, errEOF
	}
	switch c := b[i]; {
	case c == '0':
		i++
		if i < len(b) && isDigit(b[i]) {
			return i - 1, errLeadingZero
		}
	case isDigit(c):
		i = skipDigits(b, i+1)
	default:
		return i, errBadNumber
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, numEnd(b, j)
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, numEnd(b, j)
		}
		i = j
	}
	return i, ok
}

// numEnd picks the code for a number cut short at b[i].
func numEnd(b []byte, i int) code {
	if i >= len(b) {
		return errEOF
	}
	return errBadNumber
}

func isDigit(c byte) bool { return c-'0' < 10 }

// skipDigits returns the index of the first non-digit at or after b[i]. It
// tests eight bytes at a time: w-'0' sets a byte's high bit when the byte is
// below '0' (borrow) or at least 0xB0, and w+0x46 when it is in ':'..0xB9;
// together they flag every non-digit. Borrows and carries start only at a
// flagged byte, so the lowest flag is exact (the bytes above it do not
// matter).
func skipDigits(b []byte, i int) int {
	for i+8 <= len(b) {
		w := binary.LittleEndian.Uint64(b[i:])
		if m := ((w - lsb*'0') | (w + lsb*0x46)) & msb; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// scanLiteral checks for true, false or null at b[i].
func scanLiteral(b []byte, i int) (int, code) {
	var lit string
	switch b[i] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	end := i + len(lit)
	if end > len(b) {
		if string(b[i:]) == lit[:len(b)-i] {
			return len(b), errEOF
		}
		return i, errBadLiteral
	}
	if string(b[i:end]) != lit {
		return i, errBadLiteral
	}
	return end, ok
}

// plainRun advances over string bytes that need no care, eight at a time,
// from b[i] (inside a string), and returns where it stopped: at the first
// special byte, or with fewer than eight bytes left. Callers finish a string
// whose closing quote is there and hand anything else to scanString. Small
// enough to be inlined, it saves the hot loops a call per string.
func plainRun(b []byte, i int) int {
	for i+8 <= len(b) {
		if m := special(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	return i
}
