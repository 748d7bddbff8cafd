package pack

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

func entries(n int) []Entry {
	var es []Entry
	for i := range n {
		body := []byte(fmt.Sprintf(`{"i":%d}`, i))
		tomb := i%5 == 4
		if tomb {
			body = nil
		}
		v := doc.Derive(nil, 7, doc.Timestamp(1000+i), body, tomb)
		es = append(es, Entry{Key: fmt.Sprintf("k%04d", i), Version: v, ETag: fmt.Sprintf("etag-%d", i), Body: body})
	}
	return es
}

func encode(t testing.TB, limit int, es []Entry) [][]byte {
	w := NewPartWriter(limit)
	var parts [][]byte
	for i := range es {
		full, err := w.Add(&es[i])
		if err != nil {
			t.Fatal(err)
		}
		if full {
			parts = append(parts, bytes.Clone(w.Finish()))
			w.Reset()
		}
	}
	if w.Len() > 0 {
		parts = append(parts, bytes.Clone(w.Finish()))
	}
	return parts
}

func TestPartRoundTrip(t *testing.T) {
	want := entries(100)
	parts := encode(t, 600, want)
	if len(parts) < 3 {
		t.Fatalf("%d parts of a 600-byte limit for 100 entries, want several", len(parts))
	}
	var got []Entry
	for _, p := range parts {
		if err := DecodePart(p, func(e *Entry) error { got = append(got, *e); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.ETag != w.ETag || !bytes.Equal(g.Body, w.Body) || g.Version.ID() != w.Version.ID() {
			t.Fatalf("entry %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestPartRefused(t *testing.T) {
	w := NewPartWriter(1 << 20)
	es := entries(2)
	if _, err := w.Add(&es[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Add(&es[0]); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("Add out of order = %v, want Invalid", err)
	}
	tomb := es[1]
	tomb.Key, tomb.Version.Tombstone = "z", true
	if _, err := w.Add(&tomb); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("Add of a tombstone with a body = %v, want Invalid", err)
	}
}

// TestPartDamage: every single-byte change and every truncation of a part
// is Corruption, and yields no entry.
func TestPartDamage(t *testing.T) {
	part := encode(t, 1<<20, entries(3))[0]
	check := func(what string, b []byte) {
		t.Helper()
		n := 0
		err := DecodePart(b, func(*Entry) error { n++; return nil })
		if !errors.Is(err, fault.ErrCorruption) || n != 0 {
			t.Fatalf("%s: %v after %d entries, want Corruption and none", what, err, n)
		}
	}
	for i := range part {
		b := bytes.Clone(part)
		b[i] ^= 0x41
		check(fmt.Sprintf("byte %d flipped", i), b)
	}
	for n := range len(part) {
		check(fmt.Sprintf("truncated to %d", n), part[:n])
	}
}

func testManifest() *Manifest {
	return &Manifest{Tenant: "acme", Generation: NewGeneration(time.Unix(0, 1_700_000_000_000_000_000), 0xbeef),
		Backend: "s3", Created: time.Unix(1_700_000_000, 0).UTC(), HLC: 12345, Docs: 5, Bytes: 100,
		Parts: []Part{{Name: "part-000001", Docs: 3, Size: 60, First: "a", Last: "c"}, {Name: "part-000002", Docs: 2, Size: 40, First: "d", Last: "e"}},
		Feed:  map[string]uint64{"6e61": 7, "6e62": 0}}
}

func TestManifestRoundTrip(t *testing.T) {
	m := testManifest()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(*got) != fmt.Sprint(*m) {
		t.Fatalf("decoded %+v, want %+v", got, m)
	}
	for i := range b {
		d := bytes.Clone(b)
		d[i] ^= 0x20
		if _, err := DecodeManifest(d); !errors.Is(err, fault.ErrCorruption) {
			t.Fatalf("byte %d flipped: %v, want Corruption", i, err)
		}
	}
	bad := testManifest()
	bad.Parts[1].First = "b" // overlaps part 1
	b, _ = bad.Encode()
	if _, err := DecodeManifest(b); !errors.Is(err, fault.ErrCorruption) {
		t.Fatalf("overlapping parts: %v, want Corruption", err)
	}
	for _, node := range []string{"", "6E61", "zz", strings.Repeat("ab", 128)} {
		bad = testManifest()
		bad.Feed[node] = 1
		b, _ = bad.Encode()
		if _, err := DecodeManifest(b); !errors.Is(err, fault.ErrCorruption) {
			t.Fatalf("feed node %q: %v, want Corruption", node, err)
		}
	}
	for _, feed := range []map[string]uint64{nil, {}} {
		m := testManifest()
		m.Feed = feed
		b, _ = m.Encode()
		got, err := DecodeManifest(b)
		if err != nil || (got.Feed == nil) != (feed == nil) {
			t.Fatalf("feed %v: decoded %v, %v; want nil and empty told apart", feed, got.Feed, err)
		}
	}
	bad = testManifest()
	bad.Docs = 6
	b, _ = bad.Encode()
	if _, err := DecodeManifest(b); !errors.Is(err, fault.ErrCorruption) {
		t.Fatalf("document count mismatch: %v, want Corruption", err)
	}
}

func TestNames(t *testing.T) {
	at := time.Unix(0, 1_700_000_000_123_456_789)
	g := NewGeneration(at, 7)
	if tm, ok := GenerationTime(g); !ok || !tm.Equal(at) {
		t.Fatalf("GenerationTime(%s) = %v, %v", g, tm, ok)
	}
	if older := NewGeneration(at.Add(-time.Second), 0xffffffff); older >= g {
		t.Fatalf("an older generation %s sorts after %s", older, g)
	}
	gen, file, ok := ParseName("acme", PartName("acme", g, 12))
	if !ok || gen != g || file != "part-000012" {
		t.Fatalf("ParseName(part) = %q, %q, %v", gen, file, ok)
	}
	for _, bad := range []string{"pack/acme/x/manifest", "pack/other/" + g + "/manifest", "pack/acme/" + g, "pack/acme/" + g + "/a/b"} {
		if _, _, ok := ParseName("acme", bad); ok {
			t.Fatalf("ParseName(%q) accepted", bad)
		}
	}
}

func FuzzDecodePart(f *testing.F) {
	for _, p := range encode(f, 300, entries(12)) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var keys []string
		err := DecodePart(b, func(e *Entry) error { keys = append(keys, e.Key); return nil })
		if err != nil {
			if !errors.Is(err, fault.ErrCorruption) || len(keys) > 0 {
				t.Fatalf("%v after %d entries: want Corruption and none", err, len(keys))
			}
			return
		}
		for i := 1; i < len(keys); i++ {
			if keys[i] <= keys[i-1] {
				t.Fatalf("keys out of order: %q then %q", keys[i-1], keys[i])
			}
		}
	})
}

func FuzzDecodeManifest(f *testing.F) {
	b, _ := testManifest().Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			if !errors.Is(err, fault.ErrCorruption) {
				t.Fatalf("%v: want Corruption", err)
			}
			return
		}
		again, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeManifest(again); err != nil {
			t.Fatalf("re-encoded manifest refused: %v", err)
		}
	})
}
