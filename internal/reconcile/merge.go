package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cairnstore/cairn/internal/fault"
)

// MergeConflict is why [MergeJSON] could not merge: the first field, in
// sorted key order, that the two sides changed in ways that do not combine.
type MergeConflict struct {
	Path string // a JSON Pointer (RFC 6901); "" is the whole document
	Why  string
}

func (c *MergeConflict) Error() string {
	if c.Path == "" {
		return "document " + c.Why
	}
	return "field " + strconv.Quote(c.Path) + " " + c.Why
}

// MergeJSON merges a and b, two JSON texts that both derive from base,
// field by field:
//
//   - a value the two sides agree on is kept;
//   - a value changed (or added, or removed) on one side only takes that
//     side's change;
//   - an object changed on both sides, and an object on all three, merges
//     recursively;
//   - anything else changed on both sides is a *MergeConflict: different
//     scalars, different arrays (arrays are atomic values), a type clash, a
//     field removed on one side and changed on the other, a field added on
//     both sides with different values. It is wrapped in an error of
//     class fault.Conflict.
//
// The output is canonical: object keys sorted by their bytes, no
// insignificant white space, strings re-escaped minimally (no HTML
// escaping), numbers as their literal text. So MergeJSON(base, a, b) and
// MergeJSON(base, b, a) return the same bytes. Numbers compare by literal
// text: 1 and 1.0 are different values, which at worst turns a change that
// made no difference into a conflict.
//
// An input that is not one JSON value is an error of class fault.Invalid.
func MergeJSON(base, a, b []byte) ([]byte, error) {
	var vals [3]any
	for i, in := range [][]byte{base, a, b} {
		v, err := parseJSON(in)
		if err != nil {
			return nil, fault.E(fault.Invalid, fault.Context{Op: "reconcile.merge_json"}, err)
		}
		vals[i] = v
	}
	v, err := merge3("", vals[0], vals[1], vals[2])
	if err != nil {
		return nil, fault.E(fault.Conflict, fault.Context{Op: "reconcile.merge_json"}, err)
	}
	return appendJSON(nil, v), nil
}

// missing stands for a field an object does not have.
type missingT struct{}

var missing any = missingT{}

func merge3(path string, o, a, b any) (any, error) {
	switch {
	case equalJSON(a, b):
		return a, nil // unchanged, or changed the same way on both sides
	case equalJSON(o, a):
		return b, nil
	case equalJSON(o, b):
		return a, nil
	}
	om, ok1 := o.(map[string]any)
	am, ok2 := a.(map[string]any)
	bm, ok3 := b.(map[string]any)
	if !ok1 || !ok2 || !ok3 {
		return nil, &MergeConflict{Path: path, Why: clash(o, a, b)}
	}
	keys := make(map[string]struct{}, len(am)+len(bm))
	for _, m := range []map[string]any{om, am, bm} {
		for k := range m {
			keys[k] = struct{}{}
		}
	}
	out := make(map[string]any, len(keys))
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		v, err := merge3(path+"/"+pointerEscape(k), field(om, k), field(am, k), field(bm, k))
		if err != nil {
			return nil, err
		}
		if v != missing {
			out[k] = v
		}
	}
	return out, nil
}

// clash names a conflict in words that do not depend on which side is a.
func clash(o, a, b any) string {
	switch {
	case o == missing:
		return "added on both sides with different values"
	case a == missing || b == missing:
		return "removed on one side and changed on the other"
	case kind(a) != kind(b):
		return "changed to different types on the two sides"
	}
	return "changed differently on both sides"
}

func field(m map[string]any, k string) any {
	if v, ok := m[k]; ok {
		return v
	}
	return missing
}

func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return "missing"
}

func pointerEscape(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// parseJSON decodes exactly one JSON value, keeping numbers as literals.
// It refuses what the canonical output could not keep: a string with an
// unpaired surrogate escape (decoding turns it into U+FFFD) and an object
// with a member name twice (a map keeps one of them). The merged document
// would otherwise change fields neither side touched.
func parseJSON(b []byte) (any, error) {
	if hasLoneSurrogate(b) {
		return nil, errors.New("reconcile: not mergeable: a string holds an unpaired UTF-16 surrogate escape, which the merged document could not keep")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("reconcile: not JSON: data after the value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (any, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("reconcile: not JSON: %w", err)
	}
	d, ok := t.(json.Delim)
	if !ok {
		return t, nil // string, json.Number, bool, nil
	}
	switch d {
	case '{':
		m := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("reconcile: not JSON: %w", err)
			}
			k, _ := kt.(string)
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("reconcile: not mergeable: member %q appears twice in one object", k)
			}
			if m[k], err = parseValue(dec); err != nil {
				return nil, err
			}
		}
		_, err = dec.Token() // '}'
		return m, err
	case '[':
		a := []any{}
		for dec.More() {
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err = dec.Token() // ']'
		return a, err
	}
	return nil, fmt.Errorf("reconcile: not JSON: unexpected %v", d)
}

// hasLoneSurrogate reports whether a JSON text holds a \uXXXX escape of a
// UTF-16 surrogate that is not half of a pair (a high one followed at once
// by an escaped low one).
func hasLoneSurrogate(b []byte) bool {
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			inString = !inString
		case c == '\\' && inString && i+1 < len(b):
			if b[i+1] != 'u' {
				i++ // a two-byte escape, \" and \\ included
				continue
			}
			r, ok := hex4(b, i+2)
			switch {
			case !ok:
				return false // not JSON; the decoder says why
			case r >= 0xDC00 && r <= 0xDFFF:
				return true
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := hex4(b, i+8)
				if i+7 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' || !ok || lo < 0xDC00 || lo > 0xDFFF {
					return true
				}
				i += 11
			default:
				i += 5
			}
		}
	}
	return false
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
	return rune(n), err == nil
}

// equalJSON compares decoded values; missing equals only missing.
func equalJSON(x, y any) bool {
	switch x := x.(type) {
	case map[string]any:
		y, ok := y.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equalJSON(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := y.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	// string, json.Number, bool, nil, missing: comparable values.
	return x == y
}

// appendJSON appends the canonical encoding of v.
func appendJSON(b []byte, v any) []byte {
	switch v := v.(type) {
	case map[string]any:
		b = append(b, '{')
		for i, k := range slices.Sorted(maps.Keys(v)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendJSON(b, v[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case string:
		return appendString(b, v)
	case json.Number:
		return append(b, v...)
	case bool:
		return strconv.AppendBool(b, v)
	}
	return append(b, "null"...)
}

// appendString appends s as a JSON string, escaping only what JSON
// requires. The decoder already replaced invalid UTF-8 with U+FFFD; any
// left is replaced here too, so the output is always valid.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
