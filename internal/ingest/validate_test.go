package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cairnstore/cairn/internal/fault"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		in   string
		off  int64 // -1: valid
		want string
	}{
		{`{}`, -1, ""},
		{` [1, -0.5e+10, 0, true, false, null, "x\u00e9\ud83d\ude00\uD800"] `, -1, ""},
		{`{"a":{"b":[{}]}}`, -1, ""},
		{`"é日本"`, -1, ""},
		{``, 0, "end of input"},
		{`   `, 3, "end of input"},
		{`01`, 0, "leading zero"},
		{`-01`, 1, "leading zero"},
		{`+1`, 0, "expected a value"},
		{`1.`, 2, "end of input"},
		{`1.e3`, 2, "malformed number"},
		{`.5`, 0, "expected a value"},
		{`1e`, 2, "end of input"},
		{`"\x"`, 1, "invalid escape"},
		{`"\u12g4"`, 1, "invalid escape"},
		{"\"a\x01\"", 2, "control character"},
		{"\"a\tb\"", 2, "control character"},
		{"\"\xff\"", 1, "invalid UTF-8"},
		{"\"\xed\xa0\x80\"", 1, "invalid UTF-8"}, // encoded surrogate
		{"\"\xc0\xaf\"", 1, "invalid UTF-8"},     // overlong
		{`{} x`, 3, "trailing"},
		{`{"a" 1}`, 5, "expected ':'"},
		{`{"a":1,}`, 7, "expected a string object key"},
		{`[1,]`, 3, "expected a value"},
		{`[1 2]`, 3, "expected ',' or ']'"},
		{`{"a":1 "b":2}`, 7, "expected ',' or '}'"},
		{`tru`, 3, "end of input"},
		{`nul1`, 0, "invalid literal"},
		{`"abc`, 4, "end of input"},
		{`{'a':1}`, 1, "expected a string object key"},
	}
	for _, tc := range tests {
		err := Validate([]byte(tc.in))
		if tc.off < 0 {
			if err != nil {
				t.Errorf("Validate(%q) = %v, want nil", tc.in, err)
			}
			continue
		}
		var se *SyntaxError
		if !errors.As(err, &se) || se.Offset != tc.off || !strings.Contains(se.Msg, tc.want) {
			t.Errorf("Validate(%q) = %v, want offset %d %q", tc.in, err, tc.off, tc.want)
			continue
		}
		if !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("Validate(%q) error is not fault.ErrInvalid", tc.in)
		}
	}
}

func TestValidateDepth(t *testing.T) {
	deep := func(n int) []byte { return []byte(strings.Repeat("[", n) + strings.Repeat("]", n)) }
	if err := Validate(deep(DefaultMaxDepth)); err != nil {
		t.Fatalf("depth %d: %v", DefaultMaxDepth, err)
	}
	if err := Validate(deep(DefaultMaxDepth + 1)); err == nil || !strings.Contains(err.Error(), "too deep") {
		t.Fatalf("depth %d: %v, want too deep", DefaultMaxDepth+1, err)
	}
	if err := ValidateDepth(deep(5000), 5000); err != nil {
		t.Fatalf("ValidateDepth 5000: %v", err)
	}
	if err := ValidateDepth([]byte(`{"a":[1]}`), 1); err == nil {
		t.Fatalf("ValidateDepth(…, 1) accepted depth 2")
	}
}

func TestValidateDoesNotAllocate(t *testing.T) {
	doc := []byte(sampleLines(t, 20))
	lines := strings.Split(strings.TrimSpace(string(doc)), "\n")
	b := []byte(lines[3])
	if n := testing.AllocsPerRun(100, func() { _ = Validate(b) }); n != 0 {
		t.Fatalf("Validate allocates %v times per call", n)
	}
}

// FuzzValidate is differential: Validate must agree with encoding/json on
// every input, except that encoding/json accepts invalid UTF-8 in strings
// (it substitutes U+FFFD), which RFC 8259 §8.1 forbids.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{`{}`, `[1,2]`, `"\uD800"`, `01`, "\"\xff\"", `{"a":[true,null]}`, `-0.0e-0`, `1 2`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := ValidateDepth(b, 10000) // encoding/json's own limit is 10000
		want := json.Valid(b)
		if err == nil && !want {
			t.Fatalf("Validate accepted %q; encoding/json rejects it", b)
		}
		if err != nil && want && utf8.Valid(b) {
			t.Fatalf("Validate rejected valid UTF-8 %q (%v); encoding/json accepts it", b, err)
		}
		var se *SyntaxError
		if err != nil && (!errors.As(err, &se) || se.Offset < 0 || se.Offset > int64(len(b))) {
			t.Fatalf("Validate(%q) = %v: not a SyntaxError with an offset in range", b, err)
		}
	})
}

// TestByteOrderMarkNamed: a document or an NDJSON line that begins with a
// UTF-8 byte order mark is refused saying so, not as an unexpected
// character.
func TestByteOrderMarkNamed(t *testing.T) {
	bom := "\xEF\xBB\xBF"
	if err := Validate([]byte(bom + `{"a":1}`)); err == nil || !strings.Contains(err.Error(), "byte order mark") {
		t.Errorf("Validate: %v, want the byte order mark named", err)
	}
	for _, o := range []Options{{KeyField: "id"}, {Schema: MarketDataSchema}} {
		st, err := Process(context.Background(), strings.NewReader(bom+`{"id":"a"}`+"\n"), o, func(context.Context, *Batch) error { return nil })
		if err != nil || len(st.Rejects) != 1 || !strings.Contains(st.Rejects[0].Err.Error(), "byte order mark") {
			t.Errorf("%+v: %v, rejects %+v; want one reject naming the byte order mark", o, err, st.Rejects)
		}
	}
}
