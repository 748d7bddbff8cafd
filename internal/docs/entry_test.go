package docs

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"github.com/cairnstore/cairn/internal/cache"
	"github.com/cairnstore/cairn/internal/store"
)

// TestEntryOfPacks: a small document's entry holds its ETag and body in
// one allocation of its own, not the record's body buffer; a large body
// is shared, not copied.
func TestEntryOfPacks(t *testing.T) {
	body := make([]byte, 200, 512)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	rec := &store.Record{Seq: 7, ETag: `"0123456789abcdef0123456789abcdef"`, Body: body}
	e := entryOf(rec)
	if e.Seq != 7 || e.ETag != rec.ETag || !bytes.Equal(e.Body, body) {
		t.Fatalf("entryOf = %+v", e)
	}
	if &e.Body[0] == &body[0] {
		t.Fatal("a small body is shared with the record, with its spare capacity")
	}
	if cap(e.Body) != len(e.Body) {
		t.Fatalf("cap(Body) = %d, want %d: an append must not write past the body", cap(e.Body), len(e.Body))
	}
	if unsafe.Add(unsafe.Pointer(unsafe.StringData(e.ETag)), len(e.ETag)) != unsafe.Pointer(&e.Body[0]) {
		t.Fatal("ETag and body are not one allocation")
	}

	large := bytes.Repeat([]byte("x"), packLimit)
	e = entryOf(&store.Record{Seq: 8, ETag: rec.ETag, Body: large})
	if &e.Body[0] != &large[0] || e.ETag != rec.ETag {
		t.Fatal("a large body was copied")
	}
	e = entryOf(&store.Record{Seq: 9, ETag: rec.ETag}) // a tombstone's
	if e.Body != nil || e.ETag != rec.ETag {
		t.Fatalf("a record without a body: entry = %+v", e)
	}
}

// BenchmarkCachedMemory reports the heap a cached document costs, as the
// node caches one after a PUT: its key cut from the request line, its body
// read into a buffer with spare capacity, its ETag a string of its own.
func BenchmarkCachedMemory(b *testing.B) {
	const docs = 100_000
	for range b.N {
		c := cache.New(cache.Options{MaxBytes: 1 << 30, CompactInterval: -1})
		f := NewFollower(c, nil)
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range docs {
			line := fmt.Sprintf("PUT /v1/tenants/demo/docs/bench/%08d HTTP/1.1", i)
			body := make([]byte, 200, 256)
			f.Committed(&store.Record{
				Tenant: line[16:20], Key: line[26 : len(line)-9], Seq: uint64(i + 1),
				ETag: fmt.Sprintf(`"%032x"`, i), Body: body,
			})
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if n := c.Stats().Entries; n != docs {
			b.Fatalf("%d entries cached, want %d", n, docs)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/docs, "heap-B/doc")
		b.ReportMetric(float64(after.HeapObjects-before.HeapObjects)/docs, "objects/doc")
		c.Close()
	}
}

// TestBulkCommittedCopiesOnlyCachedKeys: an ingested record whose key is
// not cached costs its Entry and no copy of its body; one whose key is
// cached replaces the entry with a packed one.
func TestBulkCommittedCopiesOnlyCachedKeys(t *testing.T) {
	c := cache.New(cache.Options{MaxBytes: 1 << 20, CompactInterval: -1})
	t.Cleanup(func() { c.Close() })
	f := NewFollower(c, nil)
	body := bytes.Repeat([]byte("b"), 200)
	rec := &store.Record{Tenant: "t", Key: "absent", Seq: 1, ETag: `"e"`, Body: body, Bulk: true}
	if n := testing.AllocsPerRun(100, func() { f.Committed(rec) }); n > 1 {
		t.Fatalf("a bulk commit of an uncached key allocated %v times; want at most 1 (its Entry)", n)
	}
	if c.Resident(cache.Key{Tenant: "t", Key: "absent"}) {
		t.Fatal("a bulk commit admitted its key")
	}

	k := cache.Key{Tenant: "t", Key: "cached"}
	if !c.Set(k, &cache.Entry{Seq: 1, ETag: `"old"`, Body: []byte(`{}`)}) {
		t.Fatal("Set refused")
	}
	f.Committed(&store.Record{Tenant: "t", Key: "cached", Seq: 2, ETag: `"new"`, Body: body, Bulk: true})
	e, ok := c.Get(k)
	if !ok || e.Seq != 2 || !bytes.Equal(e.Body, body) {
		t.Fatalf("after a bulk commit of a cached key: %+v, %v", e, ok)
	}
	if &e.Body[0] == &body[0] {
		t.Fatal("the refreshed entry shares the batch's body")
	}
}
