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
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	return i
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special returns a mask with the high bit set in (at least) the lowest byte
// of w that needs attention inside a string: '"', '\\', a control character
// (< 0x20) or a non-ASCII byte. Bytes above the lowest flagged one may be
// falsely flagged (borrow propagation), so only the lowest is trusted.
func special(w uint64) uint64 {
	q := w ^ (lsb * '"')
	s := w ^ (lsb * '\\')
	return (((q - lsb) &^ q) | ((s - lsb) &^ s) | ((w - lsb*0x20) &^ w) | w) & msb
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
		// Eight bytes at a time until something needs a closer look.
		for i+8 <= len(b) {
			m := special(binary.LittleEndian.Uint64(b[i:]))
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
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

func skipDigits(b []byte, i int) int {
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
