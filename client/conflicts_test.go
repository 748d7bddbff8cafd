package client_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cairnstore/cairn/client"
	"github.com/cairnstore/cairn/internal/server"
)

func setConflict(f *fixture, key string) {
	t0 := time.UnixMilli(1700000000000)
	f.docs.SetConflict("demo", server.Conflict{Key: key, ETag: `"set"`, Siblings: []server.Sibling{
		{ETag: `"s1"`, Writer: 0xa, Time: t0, Size: 7, Body: []byte(`{"a":1}`)},
		{ETag: `"s2"`, Deleted: true, Writer: 0xb, Time: t0},
	}})
}

func TestConflicts(t *testing.T) {
	f := newFixture(t)
	c := client.New(f.url, f.token)
	ctx := t.Context()
	for _, k := range []string{"a", "b/1", "c"} {
		setConflict(f, k)
	}

	// Reading or blindly writing a conflicted document names the siblings.
	_, getErr := c.Get(ctx, "demo", "b/1")
	_, headErr := c.Head(ctx, "demo", "b/1")
	_, putErr := c.Put(ctx, "demo", "b/1", []byte(`{}`))
	for name, err := range map[string]error{"get": getErr, "head": headErr, "put": putErr} {
		var e *client.Error
		if !errors.Is(err, client.ErrConflict) || !errors.As(err, &e) || !slices.Equal(e.Siblings, []string{`"s1"`, `"s2"`}) {
			t.Fatalf("%s: %v (%+v), want ErrConflict naming the siblings", name, err, e)
		}
		if e.SiblingSet != `"set"` {
			t.Errorf("%s: SiblingSet %q", name, e.SiblingSet)
		}
	}

	var keys []string
	for cf, err := range c.Conflicts(ctx, "demo", client.PageSize(1)) {
		if err != nil {
			t.Fatal(err)
		}
		if len(cf.Siblings) != 2 || cf.Siblings[0].Body != nil || cf.Siblings[0].Writer != "a" ||
			!cf.Siblings[0].Time.Equal(time.UnixMilli(1700000000000)) || cf.ETag != `"set"` {
			t.Fatalf("listed %+v", cf)
		}
		keys = append(keys, cf.Key)
	}
	if !slices.Equal(keys, []string{"a", "b/1", "c"}) {
		t.Fatalf("Conflicts listed %v", keys)
	}
	for it, err := range c.List(ctx, "demo", client.Prefix("a")) {
		if err != nil || !it.Conflict {
			t.Fatalf("List: %+v %v, want the conflict marked", it, err)
		}
	}

	cf, err := c.Conflict(ctx, "demo", "b/1")
	if err != nil || string(cf.Siblings[0].Body) != `{"a":1}` || cf.Siblings[1].Body != nil || !cf.Siblings[1].Deleted {
		t.Fatalf("Conflict: %+v %v", cf, err)
	}

	etag, err := c.Resolve(ctx, "demo", "b/1", client.Resolution{Choose: cf.Siblings[0].ETag})
	if err != nil || etag == "" {
		t.Fatalf("Resolve choose: %q %v", etag, err)
	}
	if d, err := c.Get(ctx, "demo", "b/1"); err != nil || string(d.Body) != `{"a":1}` || d.ETag != etag {
		t.Fatalf("after the resolution: %+v %v", d, err)
	}
	if _, err := c.Resolve(ctx, "demo", "b/1", client.Resolution{Delete: true}); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("resolving again: %v, want ErrNotFound", err)
	}
	if etag, err := c.Resolve(ctx, "demo", "a", client.Resolution{Body: json.RawMessage(`{"new":1}`)}); err != nil || etag == "" {
		t.Fatalf("Resolve body: %q %v", etag, err)
	}
	if etag, err := c.Resolve(ctx, "demo", "c", client.Resolution{Delete: true}); err != nil || etag != "" {
		t.Fatalf("Resolve delete: %q %v", etag, err)
	}
	if _, err := c.Get(ctx, "demo", "c"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after resolving by a delete: %v", err)
	}
	f.docs.AddHistory("demo", "b/1", server.Lost{Winner: `"w"`, Reason: "lww", Sibling: server.Sibling{
		ETag: `"l1"`, Writer: 0xa, Size: 7, Body: []byte(`{"a":1}`)}})
	f.docs.AddHistory("demo", "b/1", server.Lost{Winner: `"w"`, Reason: "r", Sibling: server.Sibling{ETag: `"l2"`, Deleted: true}})
	var lost []client.Lost
	for l, err := range c.History(ctx, "demo", "b/1") {
		if err != nil {
			t.Fatal(err)
		}
		lost = append(lost, l)
	}
	if len(lost) != 2 || string(lost[0].Body) != `{"a":1}` || lost[0].Winner != `"w"` || lost[0].Reason != "lww" ||
		lost[0].Writer != "a" || !lost[1].Deleted || lost[1].Body != nil {
		t.Fatalf("History: %+v", lost)
	}
	setConflict(f, "d")
	for _, r := range []client.Resolution{{}, {Choose: `"s9"`}, {Choose: `"s1"`, Delete: true}} {
		if _, err := c.Resolve(ctx, "demo", "d", r); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("Resolve(%+v): %v, want ErrInvalid", r, err)
		}
	}
}
