package ingest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cairnstore/cairn/internal/streambuf"
)

// errNoKey is the message of a record whose key cannot be found.
var errNoKey = errors.New("key not found")

// errLoneSurrogate is the message of a key with an unpaired surrogate
// escape: unescaped to U+FFFD, two such keys would name one document.
const errLoneSurrogate = "key holds an unpaired UTF-16 surrogate escape, which names no character"

// parsePointer splits an RFC 6901 JSON Pointer into unescaped reference
// tokens ("/a~1b/0" → ["a/b", "0"]). The empty pointer refers to the whole
// value, which can never be a key, so it is refused.
func parsePointer(p string) ([]string, error) {
	if p == "" || p[0] != '/' {
		return nil, fmt.Errorf("ingest: JSON pointer %q must start with '/'", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		if strings.Contains(strings.ReplaceAll(strings.ReplaceAll(t, "~0", ""), "~1", ""), "~") {
			return nil, fmt.Errorf("ingest: JSON pointer %q: '~' must be followed by 0 or 1", p)
		}
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

// keyFinder locates a record's key in an already validated value.
type keyFinder struct {
	path   []string
	name   string // the option it came from, for errors
	buf    *streambuf.Buffer
	keyBuf []byte
}

// find walks path through the valid value at b[i]. The key is a string
// (unescaped, as a view or in the arena) or a number's literal text.
func (k *keyFinder) find(b []byte, i int, base int64) (streambuf.View, error) {
	i, found := k.locate(b, i, k.path)
	if !found {
		return streambuf.View{}, &FieldError{Field: k.name, Offset: base + int64(i), Msg: errNoKey.Error()}
	}
	switch c := b[i]; {
	case c == '"':
		end, esc, _ := scanString(b, i+1)
		s := b[i+1 : end-1]
		if esc {
			if loneSurrogate(s) {
				return streambuf.View{}, &FieldError{Field: k.name, Offset: base + int64(i), Msg: errLoneSurrogate}
			}
			return k.buf.Commit(unescape(k.buf.Grow(len(s)), s)), nil
		}
		return k.buf.View(s), nil
	case c == '-' || isDigit(c):
		end, _ := scanNumber(b, i)
		return k.buf.View(b[i:end]), nil
	}
	return streambuf.View{}, &FieldError{Field: k.name, Offset: base + int64(i),
		Msg: "key must be a string or number, got " + typeName(b[i])}
}

// locate walks path through the valid value at b[i] and returns the index
// of the value it names; when it is not found, the index where the walk
// stopped.
func (k *keyFinder) locate(b []byte, i int, path []string) (int, bool) {
	for _, tok := range path {
		var found bool
		switch b[i] {
		case '{':
			i, found = k.member(b, i, tok)
		case '[':
			i, found = element(b, i, tok)
		}
		if !found {
			return i, false
		}
	}
	return i, true
}

// member finds tok among the members of the valid object at b[i] and returns
// the index of its value. Like encoding/json, the last duplicate wins.
func (k *keyFinder) member(b []byte, i int, tok string) (int, bool) {
	at, found := 0, false
	i = skipWS(b, i+1)
	for b[i] != '}' {
		end, esc, _ := scanString(b, i+1)
		key := b[i+1 : end-1]
		if esc {
			k.keyBuf = unescape(k.keyBuf[:0], key)
			key = k.keyBuf
		}
		i = skipWS(b, skipWS(b, end)+1) // past ':'
		if string(key) == tok {
			at, found = i, true
		}
		i = skipValid(b, i)
		if i = skipWS(b, i); b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return at, found
}

// element finds the array element whose index is tok (decimal, no leading
// zeros, per RFC 6901).
func element(b []byte, i int, tok string) (int, bool) {
	n := 0
	if tok == "" || (len(tok) > 1 && tok[0] == '0') || len(tok) > 9 {
		return 0, false
	}
	for _, c := range []byte(tok) {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	i = skipWS(b, i+1)
	for idx := 0; b[i] != ']'; idx++ {
		if idx == n {
			return i, true
		}
		i = skipValid(b, i)
		if i = skipWS(b, i); b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return 0, false
}

// skipValid skips a value already known to be valid: only strings and
// brackets matter, so it needs neither the depth stack nor validation.
func skipValid(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _, _ := scanString(b, i+1)
		return end
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i, _, _ = scanString(b, i+1)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && !isSpace[b[i]] {
		i++
	}
	return i
}
