package backend

import (
	"bytes"
	"cmp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscapeKey(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"a", "a"},
		{"a.json", "a.2Ejson"},
		{"a/b", "a.2Fb"},
		{"..", ".2E.2E"},
		{"~", "~7E"},
		{"é", "~C3~A9"},
		{"%2F", "%2F"},
		{"a b-c_d+e#f", "a b-c_d+e#f"},
	} {
		if got := EscapeKey(tc.key); got != tc.want {
			t.Errorf("EscapeKey(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestUnescapeKeyRejects(t *testing.T) {
	for _, enc := range []string{"a/b", ".", ".2", ".2G", ".41", "~41", ".7E", "~2E", "\x80", "a~", "~7e"} {
		if k, err := UnescapeKey(enc); err == nil {
			t.Errorf("UnescapeKey(%q) = %q, want an error", enc, k)
		}
	}
}

func TestKeyPath(t *testing.T) {
	y := strings.Repeat("y", Chunk)
	for _, tc := range []struct {
		key       string
		maxChunks int
		want      string
		hashed    bool
	}{
		{"a/b", 0, "a.2Fb", false},
		{y, 0, y, false},
		{y + "z", 0, y + "+/z", false},
		{y + y, 0, y + "+/" + y, false},
		{y + y + "z", 0, y + "+/" + y + "+/z", false},
		{y + "z", 1, y + "+/#", true}, // hash follows
		{y, 1, y, false},
	} {
		got, hashed := KeyPath(tc.key, tc.maxChunks)
		if hashed != tc.hashed || !strings.HasPrefix(got, tc.want) || (!hashed && got != tc.want) {
			t.Errorf("KeyPath(%.20q…, %d) = %.30q…, %v; want %.30q…, %v", tc.key, tc.maxChunks, got, hashed, tc.want, tc.hashed)
		}
	}
}

// checkPath checks the properties of one key's path that the fs and s3
// backends rely on.
func checkPath(t *testing.T, key string, maxChunks int) (string, bool) {
	p, hashed := KeyPath(key, maxChunks)
	if !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return r >= 0x7f }) {
		t.Fatalf("KeyPath(%q) = %q is not ASCII", key, p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." || len(c) > Chunk+1 {
			t.Fatalf("KeyPath(%q) = %q has component %q", key, p, c)
		}
	}
	if maxChunks > 0 && len(p) > maxChunks*(Chunk+2)+33 {
		t.Fatalf("KeyPath(%q, %d) is %d bytes", key, maxChunks, len(p))
	}
	back, h2, err := ParsePath(p, maxChunks)
	if err != nil || h2 != hashed || (!hashed && back != key) {
		t.Fatalf("ParsePath(KeyPath(%q)) = %q, %v, %v", key, back, h2, err)
	}
	if enc := EscapeKey(key); true {
		k, err := UnescapeKey(enc)
		if err != nil || k != key {
			t.Fatalf("UnescapeKey(EscapeKey(%q)) = %q, %v", key, k, err)
		}
	}
	return p, hashed
}

// FuzzKeyPath checks that the key → path mapping round-trips, keeps byte
// order, maps key prefixes to path prefixes, and never yields a component
// a file system or S3 server could misread. The seed corpus is in
// testdata/fuzz/FuzzKeyPath.
func FuzzKeyPath(f *testing.F) {
	for _, s := range [][2]string{
		{"a", "b"}, {"a", "a/b"}, {"a-b", "a/b"}, {"a.b", "a/b"}, {"..", "."}, {"~", "\x7f"},
		{"é", "z"}, {"%2F", "/"}, {strings.Repeat("y", 200), strings.Repeat("y", 199) + "z"},
		{strings.Repeat("y", 200), strings.Repeat("y", 200) + "!"}, {strings.Repeat("/", 300), strings.Repeat("/", 301)},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if a == "" || b == "" {
			return // not keys (doc.ValidateKey), and the empty path is no file
		}
		for _, maxChunks := range []int{0, 1, 4} {
			pa, ha := checkPath(t, a, maxChunks)
			pb, hb := checkPath(t, b, maxChunks)
			if !ha && !hb {
				if got, want := cmp.Compare(pa, pb), cmp.Compare(a, b); got != want {
					t.Fatalf("maxChunks %d: order of paths %q, %q is %d; of keys %q, %q is %d", maxChunks, pa, pb, got, a, b, want)
				}
			}
			if ha && !hb {
				// A hashed key's group sorts where its first chunks do:
				// against any key outside the group, as the keys do.
				g := EscapeKey(a)[:maxChunks*Chunk]
				eb := EscapeKey(b)
				if !strings.HasPrefix(eb, g) && cmp.Compare(pa, pb) != cmp.Compare(a, b) {
					t.Fatalf("maxChunks %d: hashed %q misplaced against %q", maxChunks, a, b)
				}
				if strings.HasPrefix(eb, g) && (eb != g || pb > pa || b > a) {
					t.Fatalf("maxChunks %d: unhashed %q in the group of %q", maxChunks, b, a)
				}
			}
			if strings.HasPrefix(b, a) {
				pp, _ := PrefixPath(a, maxChunks)
				if !strings.HasPrefix(pb, pp) {
					t.Fatalf("maxChunks %d: key %q has prefix %q but path %q lacks %q", maxChunks, b, a, pb, pp)
				}
			}
			if pp, beyond := PrefixPath(a, maxChunks); !beyond && !hb && strings.HasPrefix(pb, pp) && !strings.HasPrefix(b, a) {
				t.Fatalf("maxChunks %d: path %q of %q has the prefix path %q of %q, but the key lacks the prefix", maxChunks, pb, b, pp, a)
			}
		}
	})
}

// FuzzDecodeObject feeds arbitrary bytes to the object decoder: it must not
// panic, and whatever it accepts re-encodes to the same bytes.
func FuzzDecodeObject(f *testing.F) {
	v := testVersion([]byte(`{"a":1}`))
	f.Add(EncodeObject("t", "k", &v, []byte(`{"a":1}`)))
	f.Add([]byte("CRNO\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, body, err := DecodeObject(raw)
		if err != nil {
			if _, err2 := ParseHeader(raw); err2 == nil && IsShortHeader(err) {
				t.Fatalf("short header reported for a complete header: %v", err)
			}
			return
		}
		if again := EncodeObject(h.Tenant, h.Key, &h.Version, body); !bytes.Equal(again, raw) {
			t.Fatalf("decoded object re-encodes differently:\n%x\n%x", raw, again)
		}
	})
}
