package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseETagList(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		star    bool
		tags    []string
		wantErr bool
	}{
		{in: []string{`"a"`}, tags: []string{`"a"`}},
		{in: []string{`*`}, star: true},
		{in: []string{` * `}, star: true},
		{in: []string{`"a", W/"b" ,"c"`}, tags: []string{`"a"`, `W/"b"`, `"c"`}},
		{in: []string{`"a"`, `"b"`}, tags: []string{`"a"`, `"b"`}},
		{in: []string{`,, "a" ,,`}, tags: []string{`"a"`}},
		{in: []string{`""`}, tags: []string{`""`}},
		{in: []string{"\"\x80\xff\""}, tags: []string{"\"\x80\xff\""}}, // obs-text
		{in: []string{``}},
		{in: []string{`a`}, wantErr: true},
		{in: []string{`"a`}, wantErr: true},
		{in: []string{`"a" "b"`}, wantErr: true},
		{in: []string{`"a"b`}, wantErr: true},
		{in: []string{`w/"a"`}, wantErr: true},
		{in: []string{`W/`}, wantErr: true},
		{in: []string{`"a b"`}, wantErr: true},
		{in: []string{"\"a\x7f\""}, wantErr: true},
		{in: []string{`*, "a"`}, wantErr: true},
		{in: []string{`*`, `"a"`}, wantErr: true},
		{in: []string{`**`}, wantErr: true},
	} {
		l, err := parseETagList(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if l.star != tc.star || !reflect.DeepEqual(l.tags, tc.tags) {
			t.Errorf("%q: star %v tags %q; want %v %q", tc.in, l.star, l.tags, tc.star, tc.tags)
		}
	}
}

func TestMatchETag(t *testing.T) {
	const cur = `"v1"`
	for _, tc := range []struct {
		in          string
		weak, match bool
	}{
		{`"v1"`, false, true},
		{`W/"v1"`, false, false},
		{`W/"v1"`, true, true},
		{`"v2", "v1"`, false, true},
		{`"v2"`, true, false},
		{`*`, false, true},
		{`"V1"`, true, false},
	} {
		got, err := matchETag([]string{tc.in}, cur, tc.weak)
		if err != nil || got != tc.match {
			t.Errorf("match(%q, weak=%v) = %v, %v; want %v", tc.in, tc.weak, got, err, tc.match)
		}
	}
	if n := testing.AllocsPerRun(100, func() { matchETag([]string{`"a", W/"b", "v1"`}, cur, true) }); n != 0 {
		t.Errorf("matchETag allocates %v times", n)
	}
}

func TestSanitizeRequestID(t *testing.T) {
	for in, ok := range map[string]bool{
		"abc":                     true,
		"0af7651916cd43dd8448eb2": true,
		"A.b_c:d-9":               true,
		strings.Repeat("a", 64):   true,
		strings.Repeat("a", 65):   false,
		"":                        false,
		"a b":                     false,
		"a\tb":                    false,
		"é":                       false,
		"a\x7f":                   false,
		"a/b":                     false,
		"a+b=":                    false,
		"<a>":                     false,
	} {
		if got, gotOK := sanitizeRequestID(in); gotOK != ok || (ok && got != in) {
			t.Errorf("sanitize(%q) = %q, %v; want ok=%v", in, got, gotOK, ok)
		}
	}
}

func TestCanonical(t *testing.T) {
	for p, want := range map[string]bool{
		"/v1/tenants/a/docs/k":     true,
		"/v1/tenants/a/docs/":      true,
		"/v1/tenants/a/docs/a/b":   true,
		"/v1/tenants/a/docs/a%2Fb": true,
		"/v1/tenants/a/docs/..x":   true,
		"/v1/tenants/a/docs/a//b":  false,
		"/v1/tenants/a/docs/./b":   false,
		"/v1/tenants/a/docs/..":    false,
		"/v1/tenants/a/docs/.":     false,
		"/v1//tenants":             false,
	} {
		if got := canonical(p); got != want {
			t.Errorf("canonical(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "<a&b>", "\x00\x1f\n\r\t", "é€😀", "bad\xffutf8", "\u2028\u2029"} {
		got := appendJSONString(nil, s)
		want, _ := json.Marshal(s)
		if string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

// FuzzETagList: the scanner never panics, parse and match agree, and every
// element parsed is well formed.
func FuzzETagList(f *testing.F) {
	for _, s := range []string{`"a"`, `*`, `W/"x", "y"`, `,,`, `"a" "b"`, `W/`, "\"\x80\"", `*, "a"`, ` "a" ,W/"b"`} {
		f.Add(s, `"a"`)
	}
	f.Fuzz(func(t *testing.T, hdr, cur string) {
		l, err := parseETagList([]string{hdr})
		_, merr := matchETag([]string{hdr}, cur, true)
		if (err == nil) != (merr == nil) {
			t.Fatalf("parse err %v, match err %v", err, merr)
		}
		if err != nil {
			return
		}
		for _, tag := range l.tags {
			o := opaque(tag)
			if len(o) < 2 || o[0] != '"' || o[len(o)-1] != '"' || strings.Contains(o[1:len(o)-1], `"`) {
				t.Fatalf("bad element %q from %q", tag, hdr)
			}
			// Every parsed element matches itself, weakly and (if strong) strongly.
			if ok, _ := matchETag([]string{hdr}, o, true); !ok {
				t.Fatalf("%q does not match its own element %q", hdr, o)
			}
			if tag == o {
				if ok, _ := matchETag([]string{hdr}, tag, false); !ok {
					t.Fatalf("%q does not strongly match %q", hdr, tag)
				}
			}
		}
	})
}

// FuzzRequestID: accepted ids are returned unchanged and are short,
// visible ASCII.
func FuzzRequestID(f *testing.F) {
	for _, s := range []string{"abc", "", "a b", strings.Repeat("z", 129), "é", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := sanitizeRequestID(s)
		if !ok {
			return
		}
		if got != s || len(got) == 0 || len(got) > maxRequestIDLen || !utf8.ValidString(got) {
			t.Fatalf("accepted %q as %q", s, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] <= ' ' || got[i] > '~' {
				t.Fatalf("accepted byte %#x", got[i])
			}
		}
	})
}

// FuzzAppendJSONString: the output is the string encoding/json produces.
func FuzzAppendJSONString(f *testing.F) {
	f.Add("a\"<\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s want %s", s, got, want)
		}
	})
}
