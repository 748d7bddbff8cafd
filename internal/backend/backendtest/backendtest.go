// Package backendtest is the conformance suite for backend.Backend. Every
// implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backend.Backend { return mem.New("mem") })
//	}
//
// New is called once per subtest and must return an empty backend (or one
// whose tenants no other subtest uses: every subtest uses its own tenant
// names, prefixed by a random run id, so backends that share a bucket
// between subtests work too). The corruption tests run when the backend
// implements backend.Corrupter, the tenant listing test when it implements
// backend.TenantLister, the blob tests when it has backend.Blobs; they are
// skipped otherwise.
package backendtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Run runs every conformance test against backends made by newBackend.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	run := func(name string, f func(t *testing.T, b backend.Backend, s *suite)) {
		t.Run(name, func(t *testing.T) {
			b := newBackend(t)
			f(t, b, newSuite(t))
		})
	}
	run("GetMissing", testGetMissing)
	run("RoundTrip", testRoundTrip)
	run("Tombstone", testTombstone)
	run("InvalidNames", testInvalidNames)
	run("InvalidVersion", testInvalidVersion)
	run("Order", testOrder)
	run("TenantIsolation", testTenantIsolation)
	run("Preconditions", testPreconditions)
	run("Delete", testDelete)
	run("RacingCreate", testRacingCreate)
	run("RacingIfMatch", testRacingIfMatch)
	run("Corruption", testCorruption)
	run("Canceled", testCanceled)
	run("Tenants", testTenants)
	run("Blobs", testBlobs)
	run("BlobOrder", testBlobOrder)
	run("BlobPreconditions", testBlobPreconditions)
	run("BlobInvalidNames", testBlobInvalidNames)
	run("RacingBlobCreate", testRacingBlobCreate)
}

// suite holds per-subtest state: a run id that makes tenant names unique.
type suite struct {
	id string
}

func newSuite(t *testing.T) *suite {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return &suite{id: hex.EncodeToString(b[:])}
}

// tenant returns a tenant name unique to this subtest run.
func (s *suite) tenant(name string) string { return "t" + s.id + "-" + name }

// Version returns a version of body written by replica at ts (a first
// write), for tests of any package that writes to a backend.
func Version(body []byte, replica uint64, ts int64, tombstone bool) doc.Version {
	return doc.Derive(nil, replica, doc.MakeTimestamp(ts, 0), body, tombstone)
}

func put(t *testing.T, b backend.Backend, tenant, key string, body string, pre backend.Precondition) (string, error) {
	t.Helper()
	v := Version([]byte(body), 7, 1000, false)
	return b.Put(context.Background(), tenant, key, v, []byte(body), pre)
}

func mustPut(t *testing.T, b backend.Backend, tenant, key string, body string) string {
	t.Helper()
	etag, err := put(t, b, tenant, key, body, backend.Precondition{})
	if err != nil {
		t.Fatalf("Put(%s, %.40q): %v", tenant, key, err)
	}
	if etag == "" {
		t.Fatalf("Put(%s, %.40q): empty ETag", tenant, key)
	}
	return etag
}

// wantClass fails unless err has class c and the full context.
func wantClass(t *testing.T, b backend.Backend, err error, c fault.Class, op, tenant, key string) {
	t.Helper()
	if got := fault.ClassOf(err); got != c {
		t.Fatalf("%s %s/%.40q: got error %v (class %v), want class %v", op, tenant, key, err, got, c)
	}
	// The innermost Op wins in fault.ContextOf (a validation error says
	// "validate.key"), so the backend's Op is looked for along the chain.
	ctx := fault.ContextOf(err)
	if ctx.Backend != b.Name() || ctx.Tenant != tenant || ctx.Key != key || !hasOp(err, op) {
		t.Fatalf("%s: error %v has context %+v, want op %s, backend %s, tenant %s, key %.40q",
			op, err, ctx, op, b.Name(), tenant, key)
	}
}

func hasOp(err error, op string) bool {
	var fe *fault.Error
	for e := err; errors.As(e, &fe); e = fe.Err {
		if fe.Op == op {
			return true
		}
	}
	return false
}

func testGetMissing(t *testing.T, b backend.Backend, s *suite) {
	ctx := context.Background()
	tn := s.tenant("a")
	_, err := b.Get(ctx, tn, "missing")
	wantClass(t, b, err, fault.NotFound, backend.OpGet, tn, "missing")
	_, err = b.Stat(ctx, tn, "missing")
	wantClass(t, b, err, fault.NotFound, backend.OpStat, tn, "missing")
	p, err := b.List(ctx, tn, backend.ListOptions{})
	if err != nil || len(p.Entries) != 0 || p.More {
		t.Fatalf("List of an empty tenant: got %+v, %v; want no entries", p, err)
	}
}

func testRoundTrip(t *testing.T, b backend.Backend, s *suite) {
	ctx := context.Background()
	tn := s.tenant("a")
	body := []byte(`{"hello":"world"}`)
	parent := Version([]byte("{}"), 1, 500, false)
	v := doc.Derive(&parent, 2, doc.MakeTimestamp(1000, 3), body, false)
	etag, err := b.Put(ctx, tn, "k", v, body, backend.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := b.Get(ctx, tn, "k")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(o.Body, body) {
		t.Errorf("Get body = %q, want %q", o.Body, body)
	}
	if got, want := o.Version.AppendBinary(nil), v.AppendBinary(nil); !bytes.Equal(got, want) {
		t.Errorf("Get version = %+v, want %+v", o.Version, v)
	}
	if o.Key != "k" || o.ETag != etag {
		t.Errorf("Get entry = %+v, want key k, ETag %s", o.Entry, etag)
	}
	st, err := b.Stat(ctx, tn, "k")
	if err != nil {
		t.Fatal(err)
	}
	if st != o.Entry {
		t.Errorf("Stat = %+v, want %+v (the Get entry)", st, o.Entry)
	}
	p, err := b.List(ctx, tn, backend.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 1 || p.Entries[0] != o.Entry || p.More {
		t.Errorf("List = %+v, want [%+v]", p, o.Entry)
	}

	// Rewriting changes the ETag; the new object is what Get returns.
	body2 := []byte(`{"hello":"again"}`)
	v2 := doc.Derive(&v, 2, doc.MakeTimestamp(2000, 0), body2, false)
	etag2, err := b.Put(ctx, tn, "k", v2, body2, backend.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	if etag2 == etag {
		t.Errorf("ETag unchanged (%s) after writing a new version", etag)
	}
	if o, err = b.Get(ctx, tn, "k"); err != nil || !bytes.Equal(o.Body, body2) || o.ETag != etag2 {
		t.Fatalf("Get after rewrite = %+v, %v; want body %q, ETag %s", o, err, body2, etag2)
	}

	// An empty body is a valid object.
	mustPut(t, b, tn, "empty", "")
	if o, err = b.Get(ctx, tn, "empty"); err != nil || len(o.Body) != 0 {
		t.Fatalf("Get of an empty body = %+v, %v", o, err)
	}
}

func testTombstone(t *testing.T, b backend.Backend, s *suite) {
	ctx := context.Background()
	tn := s.tenant("a")
	mustPut(t, b, tn, "k", `{"a":1}`)
	ts := Version(nil, 7, 2000, true)
	etag, err := b.Put(ctx, tn, "k", ts, nil, backend.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := b.Get(ctx, tn, "k")
	if err != nil {
		t.Fatal(err)
	}
	if !o.Version.Tombstone || len(o.Body) != 0 || o.ETag != etag {
		t.Fatalf("Get of a tombstone = %+v, want a tombstone with no body and ETag %s", o, etag)
	}
	p, err := b.List(ctx, tn, backend.ListOptions{})
	if err != nil || len(p.Entries) != 1 || p.Entries[0].Key != "k" {
		t.Fatalf("List with a tombstone = %+v, %v; want the tombstone listed", p, err)
	}
	// A tombstone is an object: create-only fails on it.
	_, err = put(t, b, tn, "k", "{}", backend.Precondition{IfNoneMatch: true})
	wantClass(t, b, err, fault.PreconditionFailed, backend.OpPut, tn, "k")
}

func testInvalidNames(t *testing.T, b backend.Backend, s *suite) {
	ctx := context.Background()
	good := s.tenant("a")
	for _, tn := range []string{"", "A", "..", ".", "a/b", "-a", strings.Repeat("a", 64), "a\x00"} {
		_, err := put(t, b, tn, "k", "{}", backend.Precondition{})
		wantClass(t, b, err, fault.Invalid, backend.OpPut, tn, "k")
		_, err = b.List(ctx, tn, backend.ListOptions{})
		wantClass(t, b, err, fault.Invalid, backend.OpList, tn, "")
	}
	for _, key := range []string{"", "a\x00b", "\x00", "a\nb", "\x7f", "a\xffb", strings.Repeat("k", 1025)} {
		_, err := put(t, b, good, key, "{}", backend.Precondition{})
		wantClass(t, b, err, fault.Invalid, backend.OpPut, good, key)
		_, err = b.Get(ctx, good, key)
		wantClass(t, b, err, fault.Invalid, backend.OpGet, good, key)
		_, err = b.Stat(ctx, good, key)
		wantClass(t, b, err, fault.Invalid, backend.OpStat, good, key)
		err = b.Delete(ctx, good, key, backend.Precondition{})
		wantClass(t, b, err, fault.Invalid, backend.OpDelete, good, key)
	}
	if p, err := b.List(ctx, good, backend.ListOptions{}); err != nil || len(p.Entries) != 0 {
		t.Fatalf("after invalid writes: List = %+v, %v; want nothing stored", p, err)
	}
}

func testInvalidVersion(t *testing.T, b backend.Backend, s *suite) {
	ctx := context.Background()
	tn := s.tenant("a")
	v := Version([]byte("{}"), 1, 1, false)
	_, err := b.Put(ctx, tn, "k", v, []byte(`{"other":1}`), backend.Precondition{})
	wantClass(t, b, err, fault.Invalid, backend.OpPut, tn, "k")
	ts := Version(nil, 1, 1, true)
	_, err = b.Put(ctx, tn, "k", ts, []byte("{}"), backend.Precondition{})
	wantClass(t, b, err, fault.Invalid, backend.OpPut, tn, "k")
	_, err = put(t, b, tn, "k", "{}", backend.Precondition{IfMatch: "x", IfNoneMatch: true})
	wantClass(t, b, err, fault.Invalid, backend.OpPut, tn, "k")
	_, err = b.Get(ctx, tn, "k")
	wantClass(t, b, err, fault.NotFound, backend.OpGet, tn, "k")
}

// AdversarialKeys are keys that break naive escaping, ordering or path
// handling: separators, escape characters, dot segments, multi-byte UTF-8,
// keys that are prefixes of others, and long keys around the 200-byte path
// component size and the s3 name limit (keys sharing 1000 bytes of prefix).
func AdversarialKeys() []string {
	keys := []string{
		"a", "ab", "abc", "a b", "a-b", "a.b", "a/b", "a/", "a.", "a~", "a+", "a#",
		"a%", "a%2F", "a%2e%2e", "%", "%%", " ", "  ", "!", "+", "#", "~", "~7E", ".2E", ".2F",
		".", "..", "...", "../x", "../../etc/passwd", "a/../b", "/", "//", "/abs", "./x", "x/.",
		"é", "e", "f", "日本語", "日本", "a\u00ff", "\U0001F600", "\U0001F600x", "~\u00a0",
		"A", "Z", "[", "_", "`", "{", "}", "|",
		strings.Repeat("y", 199), strings.Repeat("y", 199) + "é", strings.Repeat("y", 200),
		strings.Repeat("y", 200) + "!", strings.Repeat("y", 201), strings.Repeat("y", 400),
		strings.Repeat("y", 400) + "/", strings.Repeat("y", 200) + ".", strings.Repeat("y", 200) + "z",
		strings.Repeat("x", 1024), strings.Repeat("/", 1024), strings.Repeat("é", 512),
		strings.Repeat(".", 1024), strings.Repeat("\U0001F600", 256),
		strings.Repeat("z", 800), strings.Repeat("z", 799), strings.Repeat("z", 801),
		strings.Repeat("z", 1000), strings.Repeat("z", 1000) + "a", strings.Repeat("z", 1000) + "b",
		strings.Repeat("z", 1000) + "/", strings.Repeat("z", 1000) + " ", strings.Repeat("z", 1000) + "é",
		strings.Repeat("z", 1023) + "a", strings.Repeat("z", 1024), strings.Repeat("z", 1000) + "ab",
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func listAll(t *testing.T, b backend.Backend, tenant string, opts backend.ListOptions) []backend.Entry {
	t.Helper()
	var all []backend.Entry
	for i := 0; ; i++ {
		p, err := b.List(context.Background(), tenant, opts)
		if err != nil {
			t.Fatalf("List(%s, %+v): %v", tenant, opts, err)
		}
		if opts.Limit > 0 && len(p.Entries) > opts.Limit {
			t.Fatalf("List(%+v) returned %d entries, over the limit", opts, len(p.Entries))
		}
		all = append(all, p.Entries...)
		if !p.More {
			return all
		}
		if len(p.Entries) == 0 {
			t.Fatalf("List(%+v): More with no entries", opts)
		}
		if i > 10000 {
			t.Fatal("List does not end")
		}
		opts.StartAfter = p.Entries[len(p.Entries)-1].Key
	}
}

func keysOf(es []backend.Entry) []string {
	ks := make([]string, len(es))
	for i, e := range es {
		ks[i] = e.Key
	}
	return ks
}

func diffKeys(got, want []string) string {
	if slices.Equal(got, want) {
		return ""
	}
	short := func(ks []string) []string {
		out := make([]string, len(ks))
		for i, k := range ks {
			out[i] = fmt.Sprintf("%.30q(%d)", k, len(k))
		}
		return out
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at %d: got %s, want %s\ngot  %v\nwant %v",
				i, short(got[i:i+1]), short(want[i:i+1]), short(got), short(want))
		}
	}
	return fmt.Sprintf("got %d keys, want %d\ngot  %v\nwant %v", len(got), len(want), short(got), short(want))
}

func testOrder(t *testing.T, b backend.Backend, s *suite) {
	ctx := context.Background()
	tn := s.tenant("a")
	keys := AdversarialKeys()
	etags := map[string]string{}
	var mu sync.Mutex
	parallel(t, len(keys), func(i int) error {
		etag, err := put(t, b, tn, keys[i], fmt.Sprintf(`{"k":%d}`, i), backend.Precondition{})
		mu.Lock()
		etags[keys[i]] = etag
		mu.Unlock()
		return err
	})
	for _, limit := range []int{0, 1, 3, 7, 1000} {
		got := listAll(t, b, tn, backend.ListOptions{Limit: limit})
		if d := diffKeys(keysOf(got), keys); d != "" {
			t.Fatalf("List with limit %d: %s", limit, d)
		}
		for _, e := range got {
			if e.ETag != etags[e.Key] || e.Size <= 0 {
				t.Fatalf("List entry %+v: want ETag %s (from Put) and a size", e, etags[e.Key])
			}
		}
	}
	// Every key reads back as itself.
	parallel(t, len(keys), func(i int) error {
		o, err := b.Get(ctx, tn, keys[i])
		if err == nil && (o.Key != keys[i] || string(o.Body) != fmt.Sprintf(`{"k":%d}`, i)) {
			err = fmt.Errorf("Get(%.40q) = key %.40q body %q", keys[i], o.Key, o.Body)
		}
		return err
	})
	// Cursors: after every key, after absent keys around them.
	var cursors []string
	for _, k := range keys {
		cursors = append(cursors, k, k+"\x00", k[:len(k)-1], k+"~", k+"\U0010FFFF")
	}
	cursors = append(cursors, "", "\x01", "\U0010FFFF")
	for _, c := range cursors {
		// One page is enough: the pages after it are cursors of their own.
		const limit = 4
		p, err := b.List(ctx, tn, backend.ListOptions{StartAfter: c, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		want := slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k <= c })
		more := len(want) > limit
		want = want[:min(limit, len(want))]
		if d := diffKeys(keysOf(p.Entries), want); d != "" {
			t.Fatalf("List after %.40q (%d bytes): %s", c, len(c), d)
		}
		if more && !p.More {
			t.Fatalf("List after %.40q: More is false with keys left", c)
		}
	}
	// Prefixes, with and without a cursor.
	prefixes := []string{"a", "a/", "a.", "%", ".", "..", "/", "y", strings.Repeat("y", 200),
		strings.Repeat("y", 199), strings.Repeat("y", 201), "é", "日", "\U0001F600",
		strings.Repeat("z", 800), strings.Repeat("z", 1000), strings.Repeat("z", 1000) + "a",
		strings.Repeat("z", 900), "nothing"}
	for _, p := range prefixes {
		want := slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return !strings.HasPrefix(k, p) })
		got := listAll(t, b, tn, backend.ListOptions{Prefix: p, Limit: 2})
		if d := diffKeys(keysOf(got), want); d != "" {
			t.Fatalf("List with prefix %.40q (%d bytes): %s", p, len(p), d)
		}
		if len(want) > 1 {
			got := listAll(t, b, tn, backend.ListOptions{Prefix: p, StartAfter: want[0]})
			if d := diffKeys(keysOf(got), want[1:]); d != "" {
				t.Fatalf("List with prefix %.40q after %.40q: %s", p, want[0], d)
			}
		}
	}
}

func testTenantIsolation(t *testing.T, b backend.Backend, s *suite) {
	// Tenants that are prefixes of each other, and one that sorts between.
	tenants := []string{s.tenant("a"), s.tenant("a-b"), s.tenant("ab"), s.tenant("a0"), s.tenant("a-")}
	for i, tn := range tenants {
		mustPut(t, b, tn, "k", "{}")
		mustPut(t, b, tn, "k"+tn, "{}")
		if i == 0 {
			mustPut(t, b, tn, "only-first", "{}")
		}
	}
	for i, tn := range tenants {
		want := []string{"k", "k" + tn}
		if i == 0 {
			want = []string{"k", "k" + tn, "only-first"}
		}
		if d := diffKeys(keysOf(listAll(t, b, tn, backend.ListOptions{})), want); d != "" {
			t.Fatalf("tenant %s: %s", tn, d)
		}
	}
	ctx := context.Background()
	if err := b.Delete(ctx, tenants[1], "k", backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, tenants[0], "k"); err != nil {
		t.Fatalf("deleting %s/k removed %s/k: %v", tenants[1], tenants[0], err)
	}
}

func testPreconditions(t *testing.T, b backend.Backend, s *suite) {
	ctx := context.Background()
	tn := s.tenant("a")
	pf := func(err error, op, key string) {
		t.Helper()
		wantClass(t, b, err, fault.PreconditionFailed, op, tn, key)
	}
	// Create-only.
	e1, err := put(t, b, tn, "k", `{"n":1}`, backend.Precondition{IfNoneMatch: true})
	if err != nil {
		t.Fatalf("create-only on a missing key: %v", err)
	}
	_, err = put(t, b, tn, "k", `{"n":2}`, backend.Precondition{IfNoneMatch: true})
	pf(err, backend.OpPut, "k")
	// If-match.
	_, err = put(t, b, tn, "k", `{"n":2}`, backend.Precondition{IfMatch: "0123456789abcdef0123456789abcdef"})
	pf(err, backend.OpPut, "k")
	e2, err := put(t, b, tn, "k", `{"n":2}`, backend.Precondition{IfMatch: e1})
	if err != nil {
		t.Fatalf("if-match with the current ETag: %v", err)
	}
	_, err = put(t, b, tn, "k", `{"n":3}`, backend.Precondition{IfMatch: e1})
	pf(err, backend.OpPut, "k")
	_, err = put(t, b, tn, "missing", `{}`, backend.Precondition{IfMatch: e2})
	pf(err, backend.OpPut, "missing")
	if o, err := b.Get(ctx, tn, "k"); err != nil || string(o.Body) != `{"n":2}` || o.ETag != e2 {
		t.Fatalf("after failed writes: Get = %+v, %v; want the if-match write", o, err)
	}
	if _, err := b.Stat(ctx, tn, "missing"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("a failed if-match created the object: Stat = %v", err)
	}
	// Conditional delete.
	pf(b.Delete(ctx, tn, "k", backend.Precondition{IfMatch: e1}), backend.OpDelete, "k")
	pf(b.Delete(ctx, tn, "missing", backend.Precondition{IfMatch: e1}), backend.OpDelete, "missing")
	wantClass(t, b, b.Delete(ctx, tn, "k", backend.Precondition{IfNoneMatch: true}), fault.Invalid, backend.OpDelete, tn, "k")
	if err := b.Delete(ctx, tn, "k", backend.Precondition{IfMatch: e2}); err != nil {
		t.Fatalf("delete with the current ETag: %v", err)
	}
	// Create-only again after the delete.
	if _, err := put(t, b, tn, "k", `{"n":4}`, backend.Precondition{IfNoneMatch: true}); err != nil {
		t.Fatalf("create-only after delete: %v", err)
	}
}

func testDelete(t *testing.T, b backend.Backend, s *suite) {
	ctx := context.Background()
	tn := s.tenant("a")
	if err := b.Delete(ctx, tn, "never", backend.Precondition{}); err != nil {
		t.Fatalf("deleting a missing object: %v, want nil", err)
	}
	keys := []string{"a", strings.Repeat("y", 450), strings.Repeat("z", 1000) + "a", strings.Repeat("z", 1000) + "b"}
	for _, k := range keys {
		mustPut(t, b, tn, k, "{}")
	}
	for i, k := range keys {
		if err := b.Delete(ctx, tn, k, backend.Precondition{}); err != nil {
			t.Fatal(err)
		}
		_, err := b.Get(ctx, tn, k)
		wantClass(t, b, err, fault.NotFound, backend.OpGet, tn, k)
		if d := diffKeys(keysOf(listAll(t, b, tn, backend.ListOptions{})), keys[i+1:]); d != "" {
			t.Fatalf("after deleting %.20q: %s", k, d)
		}
		if err := b.Delete(ctx, tn, k, backend.Precondition{}); err != nil {
			t.Fatalf("deleting again: %v, want nil", err)
		}
	}
	// Long keys recreate what a delete may have cleaned up.
	mustPut(t, b, tn, keys[1], "{}")
	if _, err := b.Get(ctx, tn, keys[1]); err != nil {
		t.Fatal(err)
	}
}

// parallel runs f(0..n-1) on n goroutines and fails on the first error.
func parallel(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func testRacingCreate(t *testing.T, b backend.Backend, s *suite) {
	tn := s.tenant("a")
	const writers, rounds = 8, 5
	for r := range rounds {
		key := fmt.Sprintf("race-%d", r)
		var wins atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for w := range writers {
			wg.Go(func() {
				<-start
				_, err := put(t, b, tn, key, fmt.Sprintf(`{"w":%d}`, w), backend.Precondition{IfNoneMatch: true})
				switch fault.ClassOf(err) {
				case fault.Unknown:
					if err == nil {
						wins.Add(1)
						return
					}
				case fault.PreconditionFailed:
					return
				}
				errs[w] = err
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if got := wins.Load(); got != 1 {
			t.Fatalf("round %d: %d of %d create-only writers won, want exactly 1", r, got, writers)
		}
	}
}

// testRacingIfMatch runs read-modify-write increments of one counter from
// several goroutines with if-match: a lost update would leave the counter
// short, and two writers winning with the same ETag would be one.
func testRacingIfMatch(t *testing.T, b backend.Backend, s *suite) {
	ctx := context.Background()
	tn := s.tenant("a")
	const writers, each = 4, 5
	mustPut(t, b, tn, "counter", "0")
	var winsPerETag sync.Map // ETag read → number of writers that won with it
	parallel(t, writers, func(int) error {
		for done := 0; done < each; {
			o, err := b.Get(ctx, tn, "counter")
			if err != nil {
				return err
			}
			var n int
			fmt.Sscan(string(o.Body), &n)
			body := fmt.Sprint(n + 1)
			v := Version([]byte(body), 7, int64(n+1), false)
			_, err = b.Put(ctx, tn, "counter", v, []byte(body), backend.Precondition{IfMatch: o.ETag})
			switch {
			case err == nil:
				c, _ := winsPerETag.LoadOrStore(o.ETag, new(atomic.Int32))
				if c.(*atomic.Int32).Add(1) > 1 {
					return fmt.Errorf("two writers won with if-match %s", o.ETag)
				}
				done++
			case fault.ClassOf(err) != fault.PreconditionFailed:
				return err
			}
		}
		return nil
	})
	o, err := b.Get(ctx, tn, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(o.Body), fmt.Sprint(writers*each); got != want {
		t.Fatalf("counter = %s after %d if-match increments, want %s (an update was lost)", got, writers*each, want)
	}
}

func testCorruption(t *testing.T, b backend.Backend, s *suite) {
	c, ok := b.(backend.Corrupter)
	if !ok {
		t.Skipf("%T does not implement backend.Corrupter", b)
	}
	ctx := context.Background()
	tn := s.tenant("a")
	damage := []struct {
		name string
		f    func([]byte) []byte
	}{
		{"flip a body byte", func(r []byte) []byte { r[len(r)-2] ^= 0x20; return r }},
		{"flip a header byte", func(r []byte) []byte {
			h, _ := backend.ParseHeader(r)
			r[h.Len-backend.ChecksumSize-2] ^= 0x01 // inside the version encoding
			return r
		}},
		{"flip a checksum byte", func(r []byte) []byte {
			h, _ := backend.ParseHeader(r)
			r[h.Len-1] ^= 0x80
			return r
		}},
		{"truncate the body", func(r []byte) []byte { return r[:len(r)-3] }},
		{"truncate the header", func(r []byte) []byte { return r[:20] }},
		{"append bytes", func(r []byte) []byte { return append(r, "xx"...) }},
		{"empty", func([]byte) []byte { return []byte{} }},
		{"not an object", func([]byte) []byte { return []byte(`{"plain":"json"}`) }},
	}
	for i, d := range damage {
		key := fmt.Sprintf("k%d/%s", i, d.name)
		mustPut(t, b, tn, key, `{"some":"document body"}`)
		var stored []byte
		if err := c.Corrupt(ctx, tn, key, func(r []byte) []byte { stored = bytes.Clone(d.f(r)); return stored }); err != nil {
			t.Fatalf("%s: Corrupt: %v", d.name, err)
		}
		_, err := b.Get(ctx, tn, key)
		wantClass(t, b, err, fault.Corruption, backend.OpGet, tn, key)
		// The damaged bytes come back with the error, for quarantine.
		if dm := backend.DamagedOf(err); dm == nil || !bytes.Equal(dm.Raw, stored) || dm.Size != int64(len(stored)) {
			t.Fatalf("%s: Get error %v: Damaged %+v, want the %d stored bytes", d.name, err, dm, len(stored))
		}
		// The damaged object can be replaced (repair from a healthy copy).
		mustPut(t, b, tn, key, `{"some":"document body"}`)
		if _, err := b.Get(ctx, tn, key); err != nil {
			t.Fatalf("%s: Get after repair: %v", d.name, err)
		}
	}
	// An object moved under another key (a misplaced copy) is corrupt too.
	mustPut(t, b, tn, "src", "{}")
	mustPut(t, b, tn, "dst", "{}")
	o, err := b.Get(ctx, tn, "src")
	if err != nil {
		t.Fatal(err)
	}
	raw := backend.EncodeObject(tn, "src", &o.Version, o.Body)
	if err := c.Corrupt(ctx, tn, "dst", func([]byte) []byte { return raw }); err != nil {
		t.Fatal(err)
	}
	_, err = b.Get(ctx, tn, "dst")
	wantClass(t, b, err, fault.Corruption, backend.OpGet, tn, "dst")
	if err := c.Corrupt(ctx, tn, "missing", func(r []byte) []byte { return r }); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("Corrupt of a missing object: %v, want class not_found", err)
	}
}

func testCanceled(t *testing.T, b backend.Backend, s *suite) {
	tn := s.tenant("a")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.Get(ctx, tn, "k")
	if !errors.Is(err, context.Canceled) && fault.ClassOf(err) != fault.Canceled {
		t.Fatalf("Get with a canceled context: %v, want canceled", err)
	}
	v := Version([]byte("{}"), 1, 1, false)
	_, err = b.Put(ctx, tn, "k", v, []byte("{}"), backend.Precondition{})
	if fault.ClassOf(err) != fault.Canceled {
		t.Fatalf("Put with a canceled context: %v, want class canceled", err)
	}
	if _, err := b.Stat(context.Background(), tn, "k"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("a canceled Put stored the object: Stat = %v", err)
	}
}

// testTenants: a TenantLister lists every tenant that holds an object,
// sorted, tenants that are prefixes of each other included, and no tenant
// that holds none. Other subtests' tenants may be listed too (a shared
// bucket), so only this run's are compared.
func testTenants(t *testing.T, b backend.Backend, s *suite) {
	if _, ok := b.(backend.TenantLister); !ok {
		t.Skip("not a backend.TenantLister")
	}
	ctx := context.Background()
	want := []string{s.tenant("a"), s.tenant("a-b"), s.tenant("ab")}
	for _, tn := range want {
		mustPut(t, b, tn, "k", "{}")
	}
	if _, err := b.Get(ctx, s.tenant("never"), "k"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("Get of a tenant never written: %v, want not found", err)
	}
	all, ok, err := backend.ListTenants(ctx, b)
	if err != nil || !ok {
		t.Fatalf("ListTenants: %v, %v", ok, err)
	}
	if !slices.IsSorted(all) {
		t.Errorf("tenants not sorted: %q", all)
	}
	var got []string
	for _, tn := range all {
		if strings.HasPrefix(tn, "t"+s.id+"-") {
			got = append(got, tn)
		}
	}
	if d := diffKeys(got, want); d != "" {
		t.Fatalf("tenants: %s", d)
	}
}
