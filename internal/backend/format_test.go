package backend

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

func testVersion(body []byte) doc.Version {
	return doc.Derive(nil, 42, doc.MakeTimestamp(1000, 1), body, false)
}

func TestObjectRoundTrip(t *testing.T) {
	body := []byte(`{"hello":"world"}`)
	v := testVersion(body)
	raw := EncodeObject("acme", "a/b", &v, body)
	o, err := VerifyObject(raw, "acme", "a/b", "")
	if err != nil {
		t.Fatal(err)
	}
	if string(o.Body) != string(body) || o.Version.ID() != v.ID() || o.Size != int64(len(raw)) {
		t.Fatalf("VerifyObject = %+v", o)
	}
	h, _ := ParseHeader(raw)
	if o.ETag != h.ETag() || o.ETag != ETagOf(raw) || len(o.ETag) != 32 {
		t.Fatalf("ETag %q, header %q, ETagOf %q", o.ETag, h.ETag(), ETagOf(raw))
	}
}

func TestObjectDamage(t *testing.T) {
	body := []byte(`{"hello":"world"}`)
	v := testVersion(body)
	good := EncodeObject("acme", "k", &v, body)
	h, _ := ParseHeader(good)
	wrongHash := v
	wrongHash.Hash = doc.HashBody([]byte("other"))
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"truncated body", good[:len(good)-1], "truncated object"},
		{"trailing bytes", append(append([]byte{}, good...), 'x'), "after its"},
		{"flipped body bit", flip(good, len(good)-1), "checksum mismatch"},
		{"flipped checksum bit", flip(good, h.Len-1), "checksum mismatch"},
		{"bad magic", flip(good, 0), "not a cairn object"},
		{"future format", flip(good, 4), "unknown object format"},
		{"truncated header", good[:10], "truncated"},
		{"version hash mismatch", EncodeObject("acme", "k", &wrongHash, body), "content hash"},
	} {
		_, err := VerifyObject(tc.raw, "acme", "k", "")
		if !errors.Is(err, fault.ErrCorruption) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want corruption saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := VerifyObject(good, "acme", "other", ""); !errors.Is(err, fault.ErrCorruption) {
		t.Errorf("object under another key: %v, want corruption", err)
	}
	if _, err := ParseHeader(good[:h.Len-1]); !IsShortHeader(err) {
		t.Errorf("ParseHeader of a header prefix: %v, want a short header", err)
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 1
	return c
}
