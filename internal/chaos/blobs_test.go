package chaos

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
)

// Blob operations take the profile's faults like document operations, and
// Ops can single them out.
func TestBlobFaults(t *testing.T) {
	b, m, rec := wrapped(t, Profile{FailBefore: 1, Ops: []string{"put_blob"}})
	if bl, ok := backend.BlobsOf(b); !ok || bl != backend.Blobs(b) {
		t.Fatal("BlobsOf does not return the wrapper itself, so its faults would be skipped")
	}
	_, err := b.PutBlob(bg, "feed/t/n/1", []byte("x"), backend.Precondition{})
	if !errors.Is(err, fault.ErrTransient) {
		t.Fatalf("PutBlob: %v, want transient", err)
	}
	if c := fault.ContextOf(err); c.Backend != "m1" || c.Key != "feed/t/n/1" || c.Op != backend.OpPutBlob {
		t.Fatalf("error context %+v", c)
	}
	if _, _, err := m.GetBlob(bg, "feed/t/n/1"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("the blob was written after fail_before: %v", err)
	}
	if got := rec.faults(); !reflect.DeepEqual(got, []string{"fail_before"}) {
		t.Fatalf("observer heard %v", got)
	}
	if _, err := m.PutBlob(bg, "feed/t/n/1", []byte("x"), backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.GetBlob(bg, "feed/t/n/1"); err != nil {
		t.Fatalf("GetBlob outside Ops: %v", err)
	}
	if _, err := b.ListBlobs(bg, "feed/", "", 0); err != nil {
		t.Fatalf("ListBlobs outside Ops: %v", err)
	}
}

// A damaged blob read comes back changed and without an error: the
// blob's own checksum is what must catch it.
func TestBlobCorruption(t *testing.T) {
	for _, p := range []Profile{{CorruptFlip: 1}, {CorruptTruncate: 1}} {
		b, m, rec := wrapped(t, p)
		data := bytes.Repeat([]byte("0123456789"), 100)
		if _, err := m.PutBlob(bg, "pack/t/1/part-000001", data, backend.Precondition{}); err != nil {
			t.Fatal(err)
		}
		got, _, err := b.GetBlob(bg, "pack/t/1/part-000001")
		if err != nil || bytes.Equal(got, data) {
			t.Fatalf("%+v: GetBlob = %d bytes, %v; want damaged bytes", p, len(got), err)
		}
		if stored, _, _ := m.GetBlob(bg, "pack/t/1/part-000001"); !bytes.Equal(stored, data) {
			t.Fatalf("%+v: the stored blob was damaged", p)
		}
		if n := len(rec.faults()); n != 1 {
			t.Fatalf("%+v: %d injections heard, want 1", p, n)
		}
	}
}
