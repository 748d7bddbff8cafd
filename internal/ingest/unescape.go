package ingest

import (
	"unicode/utf16"
	"unicode/utf8"
)

// unescape appends the decoded form of s, the validated body of a JSON
// string that holds escapes, to dst. The result is never longer than s, so a
// caller can size dst with len(s).
//
// Lone surrogates (a \uD800-\uDFFF escape not forming a valid pair) become
// U+FFFD, exactly as encoding/json does: the RFC 8259 grammar admits them
// (§8.2 leaves their meaning open), rejecting them would refuse documents
// other JSON tools accept, and the stored body keeps the original escape.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch e := s[i+1]; e {
		case 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2 = hex4(s[i+2:])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			dst = append(dst, unescapeByte[e])
			i += 2
		}
	}
	return dst
}

// loneSurrogate reports whether the escaped JSON string content s holds a
// \u escape of a UTF-16 surrogate that is not half of a pair: unescape
// turns it into U+FFFD, so two keys that differ only there would name one
// document.
func loneSurrogate(s []byte) bool {
	for i := 0; i+1 < len(s); {
		if s[i] != '\\' {
			i++
			continue
		}
		if s[i+1] != 'u' {
			i += 2
			continue
		}
		r := hex4(s[i+2:])
		i += 6
		if !utf16.IsSurrogate(r) {
			continue
		}
		if r >= 0xdc00 || i+6 > len(s) || s[i] != '\\' || s[i+1] != 'u' {
			return true // a low half first, or a high half alone
		}
		if r2 := hex4(s[i+2:]); r2 < 0xdc00 || r2 > 0xdfff {
			return true
		}
		i += 6
	}
	return false
}

var unescapeByte = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

func hex4(p []byte) rune {
	return rune(hexVal[p[0]])<<12 | rune(hexVal[p[1]])<<8 | rune(hexVal[p[2]])<<4 | rune(hexVal[p[3]])
}
