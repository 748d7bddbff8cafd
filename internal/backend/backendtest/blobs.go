package backendtest

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
)

func blobsOf(t *testing.T, b backend.Backend) backend.Blobs {
	t.Helper()
	bl, ok := backend.BlobsOf(b)
	if !ok {
		t.Skip("backend keeps no blobs")
	}
	return bl
}

// blob returns a blob name unique to this subtest run.
func (s *suite) blob(name string) string { return "t" + s.id + "/" + name }

// wantBlobClass fails unless err has class c and a blob operation's context.
func wantBlobClass(t *testing.T, b backend.Backend, err error, c fault.Class, op, name string) {
	t.Helper()
	wantClass(t, b, err, c, op, "", name)
}

func testBlobs(t *testing.T, b backend.Backend, s *suite) {
	bl := blobsOf(t, b)
	ctx := context.Background()
	name := s.blob("feed/x/0001")
	_, _, err := bl.GetBlob(ctx, name)
	wantBlobClass(t, b, err, fault.NotFound, backend.OpGetBlob, name)

	data := bytes.Repeat([]byte("blob\x00\xff"), 1000)
	etag, err := bl.PutBlob(ctx, name, data, backend.Precondition{})
	if err != nil || etag == "" {
		t.Fatalf("PutBlob = %q, %v", etag, err)
	}
	got, getag, err := bl.GetBlob(ctx, name)
	if err != nil || !bytes.Equal(got, data) || getag != etag {
		t.Fatalf("GetBlob = %d bytes, %q, %v; want %d bytes, %q", len(got), getag, err, len(data), etag)
	}
	p, err := bl.ListBlobs(ctx, s.blob(""), "", 0)
	if err != nil || len(p.Entries) != 1 || p.Entries[0].Key != name || p.Entries[0].ETag != etag || p.Entries[0].Size != int64(len(data)) {
		t.Fatalf("ListBlobs = %+v, %v", p, err)
	}
	etag2, err := bl.PutBlob(ctx, name, []byte("second"), backend.Precondition{})
	if err != nil || etag2 == etag {
		t.Fatalf("replacing PutBlob = %q, %v (first ETag %q)", etag2, err, etag)
	}
	if err := bl.DeleteBlob(ctx, name, backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	_, _, err = bl.GetBlob(ctx, name)
	wantBlobClass(t, b, err, fault.NotFound, backend.OpGetBlob, name)
	if err := bl.DeleteBlob(ctx, name, backend.Precondition{}); err != nil {
		t.Fatalf("deleting a missing blob: %v", err)
	}
	// An empty blob is a blob.
	if _, err := bl.PutBlob(ctx, name, nil, backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := bl.GetBlob(ctx, name); err != nil || len(got) != 0 {
		t.Fatalf("empty blob read back as %d bytes, %v", len(got), err)
	}
	// Blobs are not documents: the tenant listing does not show them.
	if tl, ok := b.(backend.TenantLister); ok {
		ts, err := tl.Tenants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range ts {
			if strings.Contains(tn, backend.BlobDir) {
				t.Fatalf("Tenants lists %q", tn)
			}
		}
	}
}

func testBlobOrder(t *testing.T, b backend.Backend, s *suite) {
	bl := blobsOf(t, b)
	ctx := context.Background()
	rel := []string{"a-b", "a.b", "a/b/c", "a/b=", "a/bc", "a=b", "a_", "b/0000000000000001", "b/0000000000000002", "b/000000000000000a", "B", "Z/z"}
	var names []string
	for _, r := range rel {
		n := s.blob(r)
		names = append(names, n)
		if _, err := bl.PutBlob(ctx, n, []byte(r), backend.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(names)
	list := func(prefix, after string, limit int) []string {
		t.Helper()
		var out []string
		for {
			p, err := bl.ListBlobs(ctx, prefix, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if limit > 0 && len(p.Entries) > limit {
				t.Fatalf("page of %d entries, limit %d", len(p.Entries), limit)
			}
			for _, e := range p.Entries {
				out = append(out, e.Key)
			}
			if !p.More {
				return out
			}
			if len(p.Entries) == 0 {
				t.Fatal("More with an empty page")
			}
			after = p.Entries[len(p.Entries)-1].Key
		}
	}
	for _, limit := range []int{0, 1, 3} {
		if got := list(s.blob(""), "", limit); !slices.Equal(got, names) {
			t.Fatalf("limit %d: listed\n%q\nwant\n%q", limit, got, names)
		}
	}
	if got, want := list(s.blob("a/"), "", 2), []string{s.blob("a/b/c"), s.blob("a/b="), s.blob("a/bc")}; !slices.Equal(got, want) {
		t.Fatalf("prefix a/: %q, want %q", got, want)
	}
	if got, want := list(s.blob("b/"), s.blob("b/0000000000000001"), 0), []string{s.blob("b/0000000000000002"), s.blob("b/000000000000000a")}; !slices.Equal(got, want) {
		t.Fatalf("after the first feed name: %q, want %q", got, want)
	}
	if got := list(s.blob("nothing/"), "", 0); len(got) != 0 {
		t.Fatalf("missing prefix listed %q", got)
	}
}

func testBlobPreconditions(t *testing.T, b backend.Backend, s *suite) {
	bl := blobsOf(t, b)
	ctx := context.Background()
	name := s.blob("cond")
	_, err := bl.PutBlob(ctx, name, []byte("x"), backend.Precondition{IfMatch: "nope"})
	wantBlobClass(t, b, err, fault.PreconditionFailed, backend.OpPutBlob, name)
	etag, err := bl.PutBlob(ctx, name, []byte("one"), backend.Precondition{IfNoneMatch: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bl.PutBlob(ctx, name, []byte("two"), backend.Precondition{IfNoneMatch: true})
	wantBlobClass(t, b, err, fault.PreconditionFailed, backend.OpPutBlob, name)
	_, err = bl.PutBlob(ctx, name, []byte("two"), backend.Precondition{IfMatch: etag + "x"})
	wantBlobClass(t, b, err, fault.PreconditionFailed, backend.OpPutBlob, name)
	if got, _, _ := bl.GetBlob(ctx, name); string(got) != "one" {
		t.Fatalf("a failed precondition changed the blob to %q", got)
	}
	etag2, err := bl.PutBlob(ctx, name, []byte("two"), backend.Precondition{IfMatch: etag})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bl.PutBlob(ctx, name, []byte("x"), backend.Precondition{IfMatch: etag, IfNoneMatch: true})
	wantBlobClass(t, b, err, fault.Invalid, backend.OpPutBlob, name)
	err = bl.DeleteBlob(ctx, name, backend.Precondition{IfMatch: etag})
	wantBlobClass(t, b, err, fault.PreconditionFailed, backend.OpDeleteBlob, name)
	err = bl.DeleteBlob(ctx, name, backend.Precondition{IfNoneMatch: true})
	wantBlobClass(t, b, err, fault.Invalid, backend.OpDeleteBlob, name)
	if err := bl.DeleteBlob(ctx, name, backend.Precondition{IfMatch: etag2}); err != nil {
		t.Fatal(err)
	}
	err = bl.DeleteBlob(ctx, name, backend.Precondition{IfMatch: etag2})
	wantBlobClass(t, b, err, fault.PreconditionFailed, backend.OpDeleteBlob, name)
}

func testBlobInvalidNames(t *testing.T, b backend.Backend, s *suite) {
	bl := blobsOf(t, b)
	ctx := context.Background()
	for _, name := range []string{"", "/a", "a/", "a//b", "a/../b", "./a", "a b", "a\x00", "é", "a*b", strings.Repeat("a", backend.MaxBlobSegment+1), strings.Repeat("a/", backend.MaxBlobName/2) + "a"} {
		_, err := bl.PutBlob(ctx, name, []byte("x"), backend.Precondition{})
		wantBlobClass(t, b, err, fault.Invalid, backend.OpPutBlob, name)
		_, _, err = bl.GetBlob(ctx, name)
		wantBlobClass(t, b, err, fault.Invalid, backend.OpGetBlob, name)
		err = bl.DeleteBlob(ctx, name, backend.Precondition{})
		wantBlobClass(t, b, err, fault.Invalid, backend.OpDeleteBlob, name)
	}
	_, err := bl.ListBlobs(ctx, "../", "", 0)
	wantBlobClass(t, b, err, fault.Invalid, backend.OpListBlobs, "")
	long := s.blob(strings.Repeat("a", backend.MaxBlobSegment) + "/" + strings.Repeat("b", backend.MaxBlobSegment))
	long = long[:backend.MaxBlobName]
	if _, err := bl.PutBlob(ctx, long, nil, backend.Precondition{}); err != nil {
		t.Fatalf("a name of %d bytes: %v", len(long), err)
	}
}

func testRacingBlobCreate(t *testing.T, b backend.Backend, s *suite) {
	bl := blobsOf(t, b)
	ctx := context.Background()
	name := s.blob("race")
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []int
		errs []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := bl.PutBlob(ctx, name, []byte{byte(i)}, backend.Precondition{IfNoneMatch: true})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won = append(won, i)
			} else if fault.ClassOf(err) != fault.PreconditionFailed {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 || len(won) != 1 {
		t.Fatalf("create-only race: winners %v, other errors %v", won, errs)
	}
	got, _, err := bl.GetBlob(ctx, name)
	if err != nil || !bytes.Equal(got, []byte{byte(won[0])}) {
		t.Fatalf("blob holds %v, %v; winner %d", got, err, won[0])
	}
}
