package store

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// TestKeyOrder: a tenant's documents sort by key bytes and never interleave
// with another tenant's, whatever the tenant ids share.
func TestKeyOrder(t *testing.T) {
	rows := [][]byte{
		docKey("a", "\u00e9"), docKey("a", "z"), docKey("a", "a/b"), docKey("a", "a"),
		docKey("a-b", "a"), docKey("ab", "\x01"), docKey("a0", "k"),
	}
	within := func(k []byte, tenant string) bool { return bytes.HasPrefix(k, tenantPrefix(tableDoc, tenant)) }
	for _, k := range rows {
		for _, tn := range []string{"a", "a-b", "ab", "a0"} {
			p := tenantPrefix(tableDoc, tn)
			in := bytes.Compare(k, p) >= 0 && bytes.Compare(k, prefixEnd(p)) < 0
			if in != within(k, tn) {
				t.Errorf("key %q: in tenant %q's range = %v, but its prefix says %v", k, tn, in, within(k, tn))
			}
		}
	}
	if bytes.Compare(docKey("a", "a"), docKey("a", "a/b")) >= 0 || bytes.Compare(docKey("a", "z"), docKey("a", "\u00e9")) >= 0 {
		t.Error("keys of one tenant do not sort by key bytes")
	}
	if bytes.Compare(changeKey("t", 255), changeKey("t", 256)) >= 0 {
		t.Error("change keys do not sort by seq")
	}
	for _, c := range []struct{ in, want []byte }{
		{[]byte("ab"), []byte("ac")},
		{[]byte{'a', 0xff}, []byte("b")},
		{[]byte{0xff, 0xff}, nil},
	} {
		if got := prefixEnd(c.in); !bytes.Equal(got, c.want) {
			t.Errorf("prefixEnd(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestValueCodecs(t *testing.T) {
	v := doc.Derive(nil, 7, 42, []byte("body"), false)
	seq, got, body, err := decodeRecordValue(appendRecordValue(nil, 99, &v, []byte("body")))
	if err != nil || seq != 99 || got.ID() != v.ID() || string(body) != "body" {
		t.Fatalf("record round trip: %d %+v %q %v", seq, got, body, err)
	}
	key, cv, err := decodeChangeValue(appendChangeValue(nil, "k/1", &v))
	if err != nil || key != "k/1" || cv.ID() != v.ID() {
		t.Fatalf("change round trip: %q %+v %v", key, cv, err)
	}
	st, err := decodeSyncValue(appendSyncValue(nil, &SyncState{Base: v, RemoteETag: "e"}))
	if err != nil || st.RemoteETag != "e" || st.Base.ID() != v.ID() {
		t.Fatalf("sync round trip: %+v %v", st, err)
	}
	st, err = decodeSyncValue(appendSyncValue(nil, &SyncState{Base: v, RemoteETag: "e", Body: []byte("body")}))
	if err != nil || st.RemoteETag != "e" || st.Base.ID() != v.ID() || string(st.Body) != "body" {
		t.Fatalf("sync round trip with a body: %+v %v", st, err)
	}
	withBody := appendSyncValue(nil, &SyncState{Base: v, RemoteETag: "etag", Body: []byte{}})
	for _, bad := range [][]byte{{3}, withBody[:len(withBody)-4]} {
		if _, err := decodeSyncValue(bad); !errors.Is(err, errBadValue) {
			t.Errorf("decodeSyncValue(%x) = %v", bad, err)
		}
	}
	for _, bad := range [][]byte{nil, {2}, {valueFormat}, {valueFormat, 1, 1}} {
		if _, _, _, err := decodeRecordValue(bad); !errors.Is(err, errBadValue) {
			t.Errorf("decodeRecordValue(%x) = %v", bad, err)
		}
		if _, _, err := decodeChangeValue(bad); !errors.Is(err, errBadValue) {
			t.Errorf("decodeChangeValue(%x) = %v", bad, err)
		}
	}
	if _, _, err := decodeChangeValue([]byte{valueFormat, 200, 'k'}); !errors.Is(err, errBadValue) {
		t.Errorf("decodeChangeValue with a key longer than the value = %v", err)
	}
}

// TestCorruptRow: a damaged document row is reported as fault.Corruption by
// reads and by a write that must read it first, and nothing is written.
func TestCorruptRow(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	mustPut(t, s, "t", "ok", "{}")
	// Written first, then damaged, then reopened (so that the committer's
	// overlay does not hold the key): rows only ever come from the
	// committer, and the key filter (keyfilter.go) relies on it.
	mustPut(t, s, "t", "bad", "{}")
	if err := s.db.Set(docKey("t", "bad"), []byte{valueFormat, 0xff}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{})
	_, err := s.Get(bg, "t", "bad")
	wantClass(t, "Get", err, fault.Corruption)
	wantClass(t, "List", firstErr(s.List(bg, "t", ListOptions{})), fault.Corruption)
	_, err = s.Put(bg, "t", "bad", []byte("{}"), doc.Precondition{})
	wantClass(t, "Put over a corrupt row", err, fault.Corruption)
	if _, err := s.Get(bg, "t", "ok"); err != nil {
		t.Fatalf("an intact row next to it: %v", err)
	}
}
