package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/cairnstore/cairn/internal/fault"
)

// FuzzMergeJSON feeds MergeJSON arbitrary texts. It must not panic; a merge
// must be valid JSON, the same bytes with the sides swapped, and stable
// (merging it again with either side changes nothing the other did not);
// a failure must fail the same way swapped. The corpus is in
// testdata/fuzz/FuzzMergeJSON.
func FuzzMergeJSON(f *testing.F) {
	f.Add([]byte(`{"a":1,"o":{"x":1}}`), []byte(`{"a":2,"o":{"x":1}}`), []byte(`{"a":1,"o":{"x":1,"y":2}}`))
	f.Add([]byte(`{"a":1}`), []byte(`{"a":2}`), []byte(`{"a":3}`))
	f.Add([]byte(`{}`), []byte(`{"s":"<\u00e9>\n"}`), []byte(`{"t":[1,{"u":null}]}`))
	f.Add([]byte(`{"s":"\ud800"}`), []byte(`{"s":"\ud800","a":1}`), []byte(`{"s":"\ud800","b":[1]}`))
	f.Fuzz(func(t *testing.T, base, a, b []byte) {
		out, err := MergeJSON(base, a, b)
		out2, err2 := MergeJSON(base, b, a)
		// Invalid input fails with the first text that does not parse; a
		// conflict names the same field either way round.
		var c, c2 *MergeConflict
		conflict, conflict2 := errors.As(err, &c), errors.As(err2, &c2)
		switch {
		case (err == nil) != (err2 == nil) || conflict != conflict2 || fault.ClassOf(err) != fault.ClassOf(err2):
			t.Fatalf("MergeJSON(%q, %q, %q): error %v, swapped %v", base, a, b, err, err2)
		case conflict && *c != *c2:
			t.Fatalf("MergeJSON(%q, %q, %q): conflict %v, swapped %v", base, a, b, c, c2)
		case conflict && (!json.Valid(a) || !json.Valid(b) || !json.Valid(base)):
			t.Fatalf("MergeJSON(%q, %q, %q): a conflict on invalid input", base, a, b)
		case err != nil:
			return
		}
		if !json.Valid(out) {
			t.Fatalf("MergeJSON(%q, %q, %q) = %q: not valid JSON", base, a, b, out)
		}
		// Nothing is replaced: a U+FFFD in the merge was in an input.
		if bytes.ContainsRune(out, utf8.RuneError) && !slices.ContainsFunc([][]byte{base, a, b}, func(in []byte) bool {
			return bytes.ContainsRune(in, utf8.RuneError) || bytes.Contains(bytes.ToLower(in), []byte(`\ufffd`))
		}) {
			t.Fatalf("MergeJSON(%q, %q, %q) = %q: a character was replaced", base, a, b, out)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("MergeJSON(%q, %q, %q) = %q, swapped %q", base, a, b, out, out2)
		}
		// The merge took every change of a that b did not touch: merging
		// it with a against a changes nothing of a, so gives the merge.
		again, err := MergeJSON(a, a, out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("MergeJSON(%q, %q, %q) = %q; merging it again over a = %q, %v", base, a, b, out, again, err)
		}
		// Canonical output is a fixed point of re-encoding.
		if canon, err := MergeJSON(out, out, out); err != nil || !bytes.Equal(canon, out) {
			t.Fatalf("MergeJSON(%q, %q, %q) = %q, not canonical: %q, %v", base, a, b, out, canon, err)
		}
	})
}
