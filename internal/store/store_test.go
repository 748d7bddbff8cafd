package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"

	"github.com/cairnstore/cairn/internal/deadline"
)

func TestPutGet(t *testing.T) {
	s := openT(t, "", Options{})
	body := []byte(`{"a":1}`)
	r1, err := s.Put(bg, "t1", "k", body, doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	body[2] = 'X' // the store kept its own copy
	got, err := s.Get(bg, "t1", "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != `{"a":1}` || got.Seq != r1.Seq || got.ETag != r1.ETag {
		t.Fatalf("Get = %+v, want body {\"a\":1} seq %d etag %s", got, r1.Seq, r1.ETag)
	}
	if got.ETag != got.Version.ETag() || got.Version.Hash != doc.HashBody([]byte(`{"a":1}`)) {
		t.Fatalf("etag/hash do not match the version: %+v", got)
	}
	if want := (doc.Vector{{Replica: s.Identity().Incarnation, Counter: 1}}); !slices.Equal(got.Version.Vector, want) {
		t.Fatalf("vector %v, want %v", got.Version.Vector, want)
	}
	got.Body[0] = 'Z' // the caller owns returned bodies
	r2 := mustPut(t, s, "t1", "k", `{"a":2}`)
	if r2.Seq <= r1.Seq || r2.Version.Parent != r1.Version.ID() || r2.Version.Vector.Get(s.Identity().Incarnation) != 2 {
		t.Fatalf("second version %+v does not follow %+v", r2.Version, r1.Version)
	}
	if r2.Version.HLC <= r1.Version.HLC {
		t.Fatalf("HLC %v not after %v", r2.Version.HLC, r1.Version.HLC)
	}
	if _, err := s.Get(bg, "t1", "other"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("Get(absent) = %v, want NotFound", err)
	}
	if _, err := s.Get(bg, "t2", "k"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("Get(other tenant) = %v, want NotFound", err)
	}
	empty := mustPut(t, s, "t1", "empty", "")
	if empty.Body == nil {
		t.Fatal("a live record's body is nil")
	}
}

func TestValidation(t *testing.T) {
	s := openT(t, "", Options{})
	big := make([]byte, MaxBody+1)
	cases := []struct {
		name string
		call func() error
	}{
		{"put bad tenant", func() error { _, err := s.Put(bg, "A", "k", nil, doc.Precondition{}); return err }},
		{"put bad key", func() error { _, err := s.Put(bg, "t", "a\x00b", nil, doc.Precondition{}); return err }},
		{"put empty key", func() error { _, err := s.Put(bg, "t", "", nil, doc.Precondition{}); return err }},
		{"put oversize", func() error { _, err := s.Put(bg, "t", "k", big, doc.Precondition{}); return err }},
		{"get bad tenant", func() error { _, err := s.Get(bg, "-t", "k"); return err }},
		{"delete bad key", func() error { _, err := s.Delete(bg, "t", "\x01", doc.Precondition{}); return err }},
		{"apply bad tenant", func() error { _, err := s.Apply(bg, "", "k", doc.Version{}, nil, doc.ID{}, nil); return err }},
		{"apply bad backend", func() error {
			v := doc.Derive(nil, 1, 1, nil, false)
			_, err := s.Apply(bg, "t", "k", v, nil, doc.ID{}, &SyncUpdate{Backend: "a\x00"})
			return err
		}},
		{"list bad tenant", func() error { return firstErr(s.List(bg, "T", ListOptions{})) }},
		{"changes bad tenant", func() error { return firstErr(s.Changes(bg, "T", 0, 0)) }},
		{"trim bad tenant", func() error { return s.TrimChanges("T", 1) }},
		{"sync state bad backend", func() error { _, _, err := s.SyncState("", "t", "k"); return err }},
		{"checkpoint bad tenant", func() error { return s.PutCheckpoint("b", "T", nil) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantClass(t, c.name, c.call(), fault.Invalid) })
	}
	if n := count(t, s.List(bg, "t", ListOptions{Tombstones: true})); n != 0 {
		t.Fatalf("invalid writes stored %d records", n)
	}
}

func firstErr[T any](seq func(func(T, error) bool)) error {
	for _, err := range seq {
		if err != nil {
			return err
		}
	}
	return nil
}

func count[T any](t testing.TB, seq func(func(T, error) bool)) int {
	t.Helper()
	n := 0
	for _, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// TestPreconditions runs Put and Delete under every precondition against
// an absent, a live and a deleted document.
func TestPreconditions(t *testing.T) {
	const other = `"00000000000000000000000000000000"`
	type state int
	const (
		absent state = iota
		live
		deleted
	)
	cur := "CUR" // replaced by the current ETag
	pre := func(ifMatch, ifNone string) doc.Precondition {
		var p doc.Precondition
		if ifMatch != "" {
			p.IfMatch = []string{ifMatch}
		}
		if ifNone != "" {
			p.IfNoneMatch = []string{ifNone}
		}
		return p
	}
	ok, failed, notFound := fault.Unknown, fault.PreconditionFailed, fault.NotFound
	cases := []struct {
		state            state
		ifMatch, ifNone  string
		wantPut, wantDel fault.Class
	}{
		{absent, "", "", ok, notFound},
		{absent, "*", "", failed, failed}, // preconditions first (RFC 9110 §13.2.2)
		{absent, other, "", failed, failed},
		{absent, "", "*", ok, notFound},
		{absent, "", other, ok, notFound},
		{live, "", "", ok, ok},
		{live, cur, "", ok, ok},
		{live, "*", "", ok, ok},
		{live, other, "", failed, failed},
		{live, "", "*", failed, failed},
		{live, "", cur, failed, failed},
		{live, "", other, ok, ok},
		{deleted, "", "", ok, notFound},
		{deleted, "*", "", failed, failed},
		{deleted, cur, "", failed, failed},
		{deleted, "", "*", ok, notFound},
	}
	s := openT(t, "", Options{})
	for i, c := range cases {
		for _, del := range []bool{false, true} {
			key := fmt.Sprintf("k%d-%v", i, del)
			etag := ""
			if c.state != absent {
				etag = mustPut(t, s, "t", key, "{}").ETag
			}
			if c.state == deleted {
				r, err := s.Delete(bg, "t", key, doc.Precondition{})
				if err != nil {
					t.Fatal(err)
				}
				etag = r.ETag
			}
			p := pre(strings.ReplaceAll(c.ifMatch, cur, etag), strings.ReplaceAll(c.ifNone, cur, etag))
			var err error
			want := c.wantPut
			if del {
				want = c.wantDel
				_, err = s.Delete(bg, "t", key, p)
			} else {
				_, err = s.Put(bg, "t", key, []byte("{}"), p)
			}
			if got := fault.ClassOf(err); got != want {
				t.Errorf("case %d (state %d If-Match %q If-None-Match %q delete=%v): class %v (%v), want %v",
					i, c.state, c.ifMatch, c.ifNone, del, got, err, want)
			}
		}
	}
}

func TestTombstones(t *testing.T) {
	s := openT(t, "", Options{})
	r1 := mustPut(t, s, "t", "k", `{"v":1}`)
	d, err := s.Delete(bg, "t", "k", doc.Precondition{IfMatch: []string{r1.ETag}})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Version.Tombstone || d.Body != nil || d.Version.Parent != r1.Version.ID() || d.Seq <= r1.Seq {
		t.Fatalf("tombstone %+v", d)
	}
	got, err := s.Get(bg, "t", "k")
	if err != nil || !got.Version.Tombstone || got.Body != nil || got.ETag != d.ETag {
		t.Fatalf("Get after delete = %+v, %v; want the tombstone", got, err)
	}
	if _, err := s.Delete(bg, "t", "k", doc.Precondition{}); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("second Delete = %v, want NotFound", err)
	}
	if _, err := s.Delete(bg, "t", "never", doc.Precondition{}); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("Delete(absent) = %v, want NotFound", err)
	}
	if n := count(t, s.List(bg, "t", ListOptions{})); n != 0 {
		t.Fatalf("List without tombstones: %d records", n)
	}
	if n := count(t, s.List(bg, "t", ListOptions{Tombstones: true})); n != 1 {
		t.Fatalf("List with tombstones: %d records, want 1", n)
	}
	r3 := mustPut(t, s, "t", "k", `{"v":3}`) // resurrect: the history continues
	if r3.Version.Parent != d.Version.ID() || r3.Version.Vector.Get(s.Identity().Incarnation) != 3 {
		t.Fatalf("put after delete %+v does not follow the tombstone", r3.Version)
	}
}

func TestApply(t *testing.T) {
	s := openT(t, "", Options{})
	const remote = 0xabcdef
	body := []byte(`{"r":1}`)
	future := doc.MakeTimestamp(time.Now().Add(time.Hour).UnixMilli(), 7)
	v1 := doc.Derive(nil, remote, future, body, false)
	if _, err := s.Apply(bg, "t", "k", v1, body, doc.ID{1}, nil); !errors.Is(err, fault.ErrPreconditionFailed) {
		t.Fatalf("Apply to absent with non-zero expect = %v, want PreconditionFailed", err)
	}
	if _, err := s.Apply(bg, "t", "k", v1, []byte("x"), doc.ID{}, nil); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("Apply with a body not matching the hash = %v, want Invalid", err)
	}
	st := SyncState{Base: v1, RemoteETag: "etag-1"}
	r1, err := s.Apply(bg, "t", "k", v1, body, doc.ID{}, &SyncUpdate{Backend: "fs", State: st})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Version.ID() != v1.ID() || string(r1.Body) != string(body) {
		t.Fatalf("Apply installed %+v, want %+v", r1.Version, v1)
	}
	got, ok, err := s.SyncState("fs", "t", "k")
	if err != nil || !ok || got.RemoteETag != "etag-1" || got.Base.ID() != v1.ID() {
		t.Fatalf("SyncState = %+v, %v, %v", got, ok, err)
	}
	if _, err := s.Apply(bg, "t", "k", v1, body, doc.ID{}, nil); !errors.Is(err, fault.ErrPreconditionFailed) {
		t.Fatalf("Apply expecting absent over a version = %v, want PreconditionFailed", err)
	}
	// A local write after it orders after the remote HLC and descends from it.
	r2 := mustPut(t, s, "t", "k", "{}")
	if r2.Version.HLC <= future || r2.Version.Parent != v1.ID() || doc.Compare(r2.Version.Vector, v1.Vector) != doc.After {
		t.Fatalf("local write after Apply: %+v", r2.Version)
	}
	tomb := doc.Derive(&r2.Version, remote, r2.Version.HLC+1, nil, true)
	r3, err := s.Apply(bg, "t", "k", tomb, []byte("ignored"), r2.Version.ID(), nil)
	if err != nil || !r3.Version.Tombstone || r3.Body != nil {
		t.Fatalf("Apply(tombstone) = %+v, %v", r3, err)
	}
}

func TestList(t *testing.T) {
	s := openT(t, "", Options{})
	keys := []string{"b", "a", "a/2", "a/1", "é", "Z", "a0", "c"}
	for _, k := range keys {
		mustPut(t, s, "t", k, `{"k":"`+k+`"}`)
	}
	// Tenants that are prefixes of each other must not leak into each other.
	mustPut(t, s, "t-x", "a", "{}")
	mustPut(t, s, "tt", "a", "{}")
	if _, err := s.Delete(bg, "t", "c", doc.Precondition{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		o    ListOptions
		want string
	}{
		{ListOptions{}, "Z a a/1 a/2 a0 b é"},
		{ListOptions{Tombstones: true}, "Z a a/1 a/2 a0 b c é"},
		{ListOptions{Prefix: "a"}, "a a/1 a/2 a0"},
		{ListOptions{Prefix: "a/"}, "a/1 a/2"},
		{ListOptions{After: "a/1"}, "a/2 a0 b é"},
		{ListOptions{Prefix: "a", After: "a/2"}, "a0"},
		{ListOptions{Prefix: "a/", After: "0"}, "a/1 a/2"},
		{ListOptions{Limit: 3}, "Z a a/1"},
		{ListOptions{After: "a0", Limit: 1}, "b"},
		{ListOptions{Prefix: "zz"}, ""},
	}
	for _, c := range cases {
		var got []string
		for rec, err := range s.List(bg, "t", c.o) {
			if err != nil {
				t.Fatal(err)
			}
			if !rec.Version.Tombstone && string(rec.Body) != `{"k":"`+rec.Key+`"}` {
				t.Fatalf("%s: body %q", rec.Key, rec.Body)
			}
			got = append(got, rec.Key)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("List(%+v) = %q, want %q", c.o, strings.Join(got, " "), c.want)
		}
	}
	for rec, err := range s.List(bg, "t", ListOptions{KeysOnly: true}) {
		if err != nil || rec.Body != nil || rec.ETag == "" || rec.Seq == 0 {
			t.Fatalf("KeysOnly record %+v, %v", rec, err)
		}
	}
	for rec, err := range s.List(bg, "t", ListOptions{KeysOnly: true, NoETag: true}) {
		if want, gerr := s.Get(bg, "t", rec.Key); err != nil || gerr != nil || rec.ETag != "" || rec.Version.ID() != want.Version.ID() {
			t.Fatalf("NoETag record %+v, %v; want no ETag and the version of %+v, %v", rec, err, want, gerr)
		}
	}
	for range s.List(bg, "t", ListOptions{}) {
		break // an early break must release the iterator (checked by Close)
	}
}

// TestListSnapshot writes while a listing runs: the listing shows the state
// of its start, never the writes.
func TestListSnapshot(t *testing.T) {
	s := openT(t, "", Options{})
	for i := range 10 {
		mustPut(t, s, "t", fmt.Sprintf("k%02d", i), "old")
	}
	var got []string
	for rec, err := range s.List(bg, "t", ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec.Key+"="+string(rec.Body))
		if rec.Key == "k02" {
			mustPut(t, s, "t", "k00", "new")  // behind the cursor
			mustPut(t, s, "t", "k05", "new")  // ahead of it
			mustPut(t, s, "t", "k05a", "new") // a new key ahead
			if _, err := s.Delete(bg, "t", "k07", doc.Precondition{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := "k00=old k01=old k02=old k03=old k04=old k05=old k06=old k07=old k08=old k09=old"
	if strings.Join(got, " ") != want {
		t.Fatalf("listing during writes:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	if r, _ := s.Get(bg, "t", "k05"); string(r.Body) != "new" {
		t.Fatalf("the writes were lost: k05=%q", r.Body)
	}
}

func TestChanges(t *testing.T) {
	s := openT(t, "", Options{})
	var recs []Record
	for i := range 6 {
		recs = append(recs, mustPut(t, s, "t", fmt.Sprintf("k%d", i%3), "{}"))
		mustPut(t, s, "u", "x", "{}") // interleaved tenant: seqs have gaps in t's log
	}
	d, err := s.Delete(bg, "t", "k0", doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, d)
	var got []Change
	for c, err := range s.Changes(bg, "t", 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d changes, want %d", len(got), len(recs))
	}
	for i, c := range got {
		if c.Seq != recs[i].Seq || c.Key != recs[i].Key || c.Version.ID() != recs[i].Version.ID() {
			t.Fatalf("change %d = %+v, want seq %d key %s", i, c, recs[i].Seq, recs[i].Key)
		}
	}
	if n := count(t, s.Changes(bg, "t", recs[2].Seq, 2)); n != 2 {
		t.Fatalf("Changes(after %d, limit 2) = %d entries", recs[2].Seq, n)
	}
	if err := s.TrimChanges("t", recs[3].Seq); err != nil {
		t.Fatal(err)
	}
	for c, err := range s.Changes(bg, "t", 0, 1) {
		if err != nil || c.Seq != recs[4].Seq {
			t.Fatalf("first change after trim = %+v, %v; want seq %d", c, err, recs[4].Seq)
		}
	}
	if n := count(t, s.Changes(bg, "u", 0, 0)); n != 6 {
		t.Fatalf("trim of t touched u: %d entries left, want 6", n)
	}
	checkConsistent(t, s)
}

// checkConsistent checks that every document row has its change-log entry
// at its seq with its version, that every change entry is either a document's
// current version or superseded by a later entry of the same key, and that
// no seq exceeds the stored high-water mark.
func checkConsistent(t testing.TB, s *Store) {
	t.Helper()
	for tenant, err := range s.Tenants(bg) {
		if err != nil {
			t.Fatal(err)
		}
		latest := map[string]Change{}
		for c, err := range s.Changes(bg, tenant, 0, 0) {
			if err != nil {
				t.Fatal(err)
			}
			if c.Seq > s.seq {
				t.Fatalf("%s: change seq %d above the high-water mark %d", tenant, c.Seq, s.seq)
			}
			latest[c.Key] = c
		}
		n := 0
		for rec, err := range s.List(bg, tenant, ListOptions{Tombstones: true, KeysOnly: true}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			c, ok := latest[rec.Key]
			if !ok || c.Seq != rec.Seq || c.Version.ID() != rec.Version.ID() {
				t.Fatalf("%s/%s: document at seq %d, latest change %+v (found %v)", tenant, rec.Key, rec.Seq, c, ok)
			}
		}
		if n != len(latest) {
			t.Fatalf("%s: %d documents but %d keys in the change log", tenant, n, len(latest))
		}
	}
}

func TestTenants(t *testing.T) {
	s := openT(t, "", Options{})
	for _, tn := range []string{"b", "a-1", "a", "a1", "b"} {
		mustPut(t, s, tn, "k", "{}")
		mustPut(t, s, tn, "k2", "{}")
	}
	var got []string
	for tn, err := range s.Tenants(bg) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tn)
	}
	if want := "a a-1 a1 b"; strings.Join(got, " ") != want {
		t.Fatalf("Tenants = %q, want %q", strings.Join(got, " "), want)
	}
}

func TestSyncStateAndCheckpoint(t *testing.T) {
	s := openT(t, "", Options{})
	if _, ok, err := s.SyncState("s3", "t", "k"); ok || err != nil {
		t.Fatalf("SyncState(absent) = %v, %v", ok, err)
	}
	v := doc.Derive(nil, 9, 5, []byte("x"), false)
	for _, k := range []string{"b", "a", "c"} {
		if err := s.PutSyncState("s3", "t", k, SyncState{Base: v, RemoteETag: "e-" + k}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutSyncState("s3x", "t", "z", SyncState{Base: v}); err != nil { // another backend
		t.Fatal(err)
	}
	if err := s.DeleteSyncState("s3", "t", "c"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for r, err := range s.ListSyncState(bg, "s3", "t", "") {
		if err != nil {
			t.Fatal(err)
		}
		if r.RemoteETag != "e-"+r.Key || r.Base.ID() != v.ID() {
			t.Fatalf("sync record %+v", r)
		}
		got = append(got, r.Key)
	}
	if strings.Join(got, " ") != "a b" {
		t.Fatalf("ListSyncState = %v, want [a b]", got)
	}
	if n := count(t, s.ListSyncState(bg, "s3", "t", "a")); n != 1 {
		t.Fatalf("ListSyncState after a = %d", n)
	}
	if _, ok, err := s.Checkpoint("s3", "t"); ok || err != nil {
		t.Fatalf("Checkpoint(absent) = %v, %v", ok, err)
	}
	if err := s.PutCheckpoint("s3", "t", []byte("cursor-1")); err != nil {
		t.Fatal(err)
	}
	if cp, ok, err := s.Checkpoint("s3", "t"); string(cp) != "cursor-1" || !ok || err != nil {
		t.Fatalf("Checkpoint = %q, %v, %v", cp, ok, err)
	}
}

// TestConcurrentIfMatch: many goroutines increment counters in a few
// documents with read, If-Match write, retry. No update may be lost.
func TestConcurrentIfMatch(t *testing.T) {
	s := openT(t, "", Options{})
	const workers, keys, incs = 16, 3, 20
	var wg sync.WaitGroup
	var mu sync.Mutex // guards successes
	successes := map[string]int{}
	for w := range workers {
		wg.Go(func() {
			for i := range incs {
				key := fmt.Sprintf("ctr%d", (w+i)%keys)
				for {
					var n int
					var pre doc.Precondition
					rec, err := s.Get(bg, "t", key)
					switch {
					case errors.Is(err, fault.ErrNotFound):
						pre.IfNoneMatch = []string{"*"}
					case err != nil:
						t.Error(err)
						return
					default:
						fmt.Sscan(string(rec.Body), &n)
						pre.IfMatch = []string{rec.ETag}
					}
					_, err = s.Put(bg, "t", key, fmt.Appendf(nil, "%d", n+1), pre)
					if errors.Is(err, fault.ErrPreconditionFailed) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					successes[key]++
					mu.Unlock()
					break
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for k := range keys {
		key := fmt.Sprintf("ctr%d", k)
		rec, err := s.Get(bg, "t", key)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		fmt.Sscan(string(rec.Body), &n)
		if n != successes[key] {
			t.Errorf("%s = %d, but %d increments succeeded", key, n, successes[key])
		}
		total += n
	}
	if total != workers*incs {
		t.Errorf("total %d, want %d", total, workers*incs)
	}
	checkConsistent(t, s)
}

// blockCommits makes the committer stop in OnCommit after its next commit
// until release is called, so a test can queue requests deterministically.
type blockCommits struct {
	entered chan struct{}
	gate    chan struct{}
	mu      sync.Mutex // guards sizes
	sizes   []int
}

func newBlockCommits() *blockCommits {
	return &blockCommits{entered: make(chan struct{}, 100), gate: make(chan struct{})}
}

func (b *blockCommits) onCommit(n int, _ time.Duration) {
	b.mu.Lock()
	b.sizes = append(b.sizes, n)
	b.mu.Unlock()
	b.entered <- struct{}{}
	<-b.gate
}

// waitQueued spins until n requests wait in the queue. It does not sleep,
// and it is only used while the committer cannot take requests (its open
// group is full and the syncer is parked), so the count only grows.
func waitQueued(s *Store, n int) {
	for len(s.reqs) < n {
		runtime.Gosched()
	}
}

// TestGroupCommit parks the syncer, has requests taken one by one while
// it is parked, and checks they commit as one group, evaluated in order: of
// two create-only writes to one key in the same group, exactly the first
// succeeds, and seqs follow the order taken.
func TestGroupCommit(t *testing.T) {
	bc := newBlockCommits()
	taken := make(chan struct{}, 100)
	s := openT(t, "", Options{OnCommit: bc.onCommit, onTake: func() { taken <- struct{}{} }})
	first := make(chan error, 1)
	go func() { _, err := s.Put(bg, "t", "first", nil, doc.Precondition{}); first <- err }()
	<-taken
	<-bc.entered // the syncer is parked after committing "first"
	const n = 10
	errs := make([]error, n)
	recs := make([]Record, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("k%d", i)
			pre := doc.Precondition{}
			if i >= n-2 {
				key, pre = "same", doc.Precondition{IfNoneMatch: []string{"*"}}
			}
			recs[i], errs[i] = s.Put(bg, "t", key, []byte{byte(i)}, pre)
		})
		<-taken // fix the order
	}
	bc.gate <- struct{}{} // release the first commit
	<-bc.entered          // the group's commit
	bc.gate <- struct{}{}
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	bc.mu.Lock()
	sizes := slices.Clone(bc.sizes)
	bc.mu.Unlock()
	if !slices.Equal(sizes, []int{1, n - 1}) {
		t.Fatalf("group sizes %v, want [1 %d]", sizes, n-1)
	}
	for i := range n - 1 {
		if errs[i] != nil {
			t.Fatalf("write %d: %v", i, errs[i])
		}
		if i > 0 && recs[i].Seq != recs[i-1].Seq+1 {
			t.Fatalf("seqs not consecutive in the order taken: %d then %d", recs[i-1].Seq, recs[i].Seq)
		}
	}
	wantClass(t, "second create-only write in the group", errs[n-1], fault.PreconditionFailed)
	close(bc.gate) // later commits pass
}

// openStalled opens a store with MaxBatch 1 whose syncer is parked on its
// first commit and whose committer holds a full group it cannot hand over,
// so that what is queued next stays queued until bc.gate is closed.
func openStalled(t *testing.T) (*Store, *blockCommits) {
	bc := newBlockCommits()
	taken := make(chan struct{}, 2)
	s := openT(t, "", Options{MaxBatch: 1, OnCommit: bc.onCommit, onTake: func() {
		select {
		case taken <- struct{}{}:
		default: // only the first two are waited for
		}
	}})
	go func() { _, _ = s.Put(bg, "t", "first", nil, doc.Precondition{}) }()
	<-bc.entered // syncer parked
	<-taken
	go func() { _, _ = s.Put(bg, "t", "filler", nil, doc.Precondition{}) }()
	<-taken // the committer's group is full
	return s, bc
}

// TestContextWhileQueued: a request whose context ends while it waits in
// the queue is answered with the context error and not written. MaxBatch 1
// and a parked syncer keep it queued: the committer holds a full group it
// cannot hand over.
func TestContextWhileQueued(t *testing.T) {
	s, bc := openStalled(t)
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { _, err := s.Put(ctx, "t", "late", nil, doc.Precondition{}); done <- err }()
	waitQueued(s, 1)
	cancel()
	close(bc.gate)
	err := <-done
	wantClass(t, "canceled while queued", err, fault.Canceled)
	if !strings.Contains(err.Error(), "not written") {
		t.Fatalf("error %q does not say it was not written", err)
	}
	if _, err := s.Get(bg, "t", "late"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("Get(late) = %v, want NotFound", err)
	}
	if _, err := s.Get(bg, "t", "filler"); err != nil {
		t.Fatalf("Get(filler) = %v", err)
	}
	_, err = s.Put(ctx, "t", "late", nil, doc.Precondition{}) // already canceled
	wantClass(t, "canceled before submit", err, fault.Canceled)
}

// TestCarriedDeadlineWhileQueued: a write whose context carries its
// deadline as a value (package deadline, no timer) and whose deadline
// passes while it waits in the queue is answered DeadlineExceeded and not
// written, as one with a standard deadline is.
func TestCarriedDeadlineWhileQueued(t *testing.T) {
	s, bc := openStalled(t)
	ctx := deadline.With(bg, time.Now().Add(50*time.Millisecond), false)
	done := make(chan error, 1)
	go func() { _, err := s.Put(ctx, "t", "late", nil, doc.Precondition{}); done <- err }()
	waitQueued(s, 1)
	expired, cancel := deadline.Bound(ctx) // the test waits for the deadline itself
	<-expired.Done()
	cancel()
	close(bc.gate)
	err := <-done
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not written") {
		t.Fatalf("expired while queued: %v, want DeadlineExceeded, not written", err)
	}
	if _, err := s.Get(bg, "t", "late"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("Get(late) = %v, want NotFound", err)
	}
	_, err = s.Put(ctx, "t", "late", nil, doc.Precondition{}) // already expired
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired before submit: %v", err)
	}
}

// TestCarriedDeadlineQueueFull: a writer that finds the queue full waits
// for room only until its carried deadline.
func TestCarriedDeadlineQueueFull(t *testing.T) {
	s, bc := openStalled(t)
	defer close(bc.gate)
	for i := range cap(s.reqs) {
		go func() { _, _ = s.Put(bg, "t", fmt.Sprintf("q%d", i), nil, doc.Precondition{}) }()
	}
	waitQueued(s, cap(s.reqs))
	ctx := deadline.With(bg, time.Now().Add(50*time.Millisecond), false)
	_, err := s.Put(ctx, "t", "late", nil, doc.Precondition{})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not written") {
		t.Fatalf("queue full until the deadline: %v, want DeadlineExceeded, not written", err)
	}
}

func TestClose(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	// Writers race with Close: each either succeeds (and is durable) or
	// gets ErrClosed; none hangs.
	var wg sync.WaitGroup
	results := make([]error, 32)
	start := make(chan struct{})
	for i := range results {
		wg.Go(func() {
			<-start
			_, results[i] = s.Put(bg, "t", fmt.Sprintf("k%d", i), []byte("{}"), doc.Precondition{})
		})
	}
	close(start)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	err := s.Close()
	wantClass(t, "second Close", err, fault.Transient)
	if _, err := s.Get(bg, "t", "k0"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
	if err := firstErr(s.List(bg, "t", ListOptions{})); !errors.Is(err, ErrClosed) {
		t.Fatalf("List after Close = %v, want ErrClosed", err)
	}
	s2 := openT(t, dir, Options{})
	for i, err := range results {
		_, gerr := s2.Get(bg, "t", fmt.Sprintf("k%d", i))
		switch {
		case err == nil && gerr != nil:
			t.Fatalf("acknowledged write k%d lost: %v", i, gerr)
		case err != nil && !errors.Is(err, ErrClosed):
			t.Fatalf("write k%d: %v, want success or ErrClosed", i, err)
		}
	}
}

func TestBodyCopyOnRead(t *testing.T) {
	s := openT(t, "", Options{})
	mustPut(t, s, "t", "k", "abc")
	a, _ := s.Get(bg, "t", "k")
	b, _ := s.Get(bg, "t", "k")
	a.Body[0] = 'X'
	if !bytes.Equal(b.Body, []byte("abc")) {
		t.Fatal("two Gets share a body")
	}
}
