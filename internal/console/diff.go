package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Change is one difference between two JSON documents, at a JSON Pointer
// (RFC 6901) path: "" is the whole document.
type Change struct {
	Path string `json:"path"`
	// Op is "added" (To only), "removed" (From only) or "changed" (both).
	Op   string          `json:"op"`
	From json.RawMessage `json:"from,omitempty"`
	To   json.RawMessage `json:"to,omitempty"`
}

// Diff returns the structural differences that turn the JSON document
// from into to, sorted by path. Objects are compared member by member and
// arrays element by element (an insertion shows as changes from there to
// the end: the page lines the versions up by path, and an index is a
// path); any other pair of values, or values of different types, differ as
// a whole. A nil side is an absent document (a delete, or no ancestor
// yet): everything is added or removed at "".
func Diff(from, to []byte) ([]Change, error) {
	var a, b any
	var err error
	if from != nil {
		if a, err = decodeJSON(from); err != nil {
			return nil, fmt.Errorf("console: diff: the first document: %w", err)
		}
	}
	if to != nil {
		if b, err = decodeJSON(to); err != nil {
			return nil, fmt.Errorf("console: diff: the second document: %w", err)
		}
	}
	out := []Change{}
	switch {
	case from == nil && to == nil:
	case from == nil:
		out = append(out, Change{Path: "", Op: "added", To: compact(b)})
	case to == nil:
		out = append(out, Change{Path: "", Op: "removed", From: compact(a)})
	default:
		out = diffValue(out, "", a, b)
	}
	slices.SortStableFunc(out, func(x, y Change) int { return strings.Compare(x.Path, y.Path) })
	return out, nil
}

// decodeJSON decodes one JSON value, keeping numbers as written so that
// 1.0 and 1 are told apart as the bodies hold them.
func decodeJSON(body []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// diffValue appends the changes from a to b at path. Its recursion is
// bounded by the nesting depth the store accepts for a body.
func diffValue(out []Change, path string, a, b any) []Change {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := make([]string, 0, len(x)+len(y))
		for k := range x {
			keys = append(keys, k)
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := path + "/" + escapePointer(k)
			xv, inA := x[k]
			yv, inB := y[k]
			switch {
			case !inA:
				out = append(out, Change{Path: p, Op: "added", To: compact(yv)})
			case !inB:
				out = append(out, Change{Path: p, Op: "removed", From: compact(xv)})
			default:
				out = diffValue(out, p, xv, yv)
			}
		}
		return out
	case []any:
		y, ok := b.([]any)
		if !ok {
			break
		}
		for i := range max(len(x), len(y)) {
			p := path + "/" + strconv.Itoa(i)
			switch {
			case i >= len(x):
				out = append(out, Change{Path: p, Op: "added", To: compact(y[i])})
			case i >= len(y):
				out = append(out, Change{Path: p, Op: "removed", From: compact(x[i])})
			default:
				out = diffValue(out, p, x[i], y[i])
			}
		}
		return out
	}
	ca, cb := compact(a), compact(b)
	if !bytes.Equal(ca, cb) {
		out = append(out, Change{Path: path, Op: "changed", From: ca, To: cb})
	}
	return out
}

// compact is v as compact JSON; object members come out sorted, so equal
// values compare equal as bytes.
func compact(v any) json.RawMessage {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)              // the page shows values as text: "<" stays "<"
	if err := e.Encode(v); err != nil { // cannot happen: v was decoded from JSON
		return json.RawMessage(strconv.Quote(err.Error()))
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// escapePointer escapes a member name for a JSON Pointer (RFC 6901).
func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
