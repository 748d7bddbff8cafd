package console

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/server"
)

func TestDiff(t *testing.T) {
	ch := func(path, op, from, to string) Change {
		c := Change{Path: path, Op: op}
		if from != "" {
			c.From = json.RawMessage(from)
		}
		if to != "" {
			c.To = json.RawMessage(to)
		}
		return c
	}
	for _, tc := range []struct {
		name     string
		from, to string // "-": absent (nil)
		want     []Change
	}{
		{"equal", `{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`, []Change{}},
		{"member added, removed, changed", `{"a":1,"b":2,"c":{"d":true}}`, `{"b":3,"c":{"d":true},"e":null}`,
			[]Change{ch("/a", "removed", `1`, ""), ch("/b", "changed", `2`, `3`), ch("/e", "added", "", `null`)}},
		{"nested", `{"u":{"name":"ann","tags":["x"]}}`, `{"u":{"name":"bob","tags":["x","y"]}}`,
			[]Change{ch("/u/name", "changed", `"ann"`, `"bob"`), ch("/u/tags/1", "added", "", `"y"`)}},
		{"array shrinks", `[1,2,3]`, `[1]`, []Change{ch("/1", "removed", `2`, ""), ch("/2", "removed", `3`, "")}},
		{"type changes as a whole", `{"a":{"b":1}}`, `{"a":[1]}`, []Change{ch("/a", "changed", `{"b":1}`, `[1]`)}},
		{"numbers as written", `{"n":1}`, `{"n":1.0}`, []Change{ch("/n", "changed", `1`, `1.0`)}},
		{"pointer escapes", `{"a/b":1,"c~d":1}`, `{"a/b":2,"c~d":2}`,
			[]Change{ch("/a~1b", "changed", `1`, `2`), ch("/c~0d", "changed", `1`, `2`)}},
		{"no HTML escaping", `{"h":"<b>"}`, `{"h":"<i>&"}`, []Change{ch("/h", "changed", `"<b>"`, `"<i>&"`)}},
		{"deleted", `{"a":1}`, "-", []Change{ch("", "removed", `{"a":1}`, "")}},
		{"created", "-", `{"a":1}`, []Change{ch("", "added", "", `{"a":1}`)}},
		{"whole scalar", `1`, `2`, []Change{ch("", "changed", `1`, `2`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var from, to []byte
			if tc.from != "-" {
				from = []byte(tc.from)
			}
			if tc.to != "-" {
				to = []byte(tc.to)
			}
			got, err := Diff(from, to)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Diff(%s, %s)\n got %s\nwant %s", tc.from, tc.to, js(got), js(tc.want))
			}
		})
	}
	for _, bad := range [][2]string{{`{`, `{}`}, {`{}`, `{} {}`}} {
		if _, err := Diff([]byte(bad[0]), []byte(bad[1])); err == nil {
			t.Errorf("Diff(%s, %s): no error", bad[0], bad[1])
		}
	}
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestConflictAncestor: with a known common ancestor the conflict comes
// with it and each sibling's changes against it; without one, or with one
// found for another sibling set, it comes with none.
func TestConflictAncestor(t *testing.T) {
	anc := &Ancestor{SetETag: `"set1"`, ETag: `"a0"`, Writer: 0xab, Time: time.Unix(1, 0), Source: "the conflict history",
		Body: []byte(`{"v":"o","n":1}`)}
	for _, tc := range []struct {
		name string
		anc  *Ancestor
		want bool
	}{{"known", anc, true}, {"none", nil, false}, {"another set", &Ancestor{SetETag: `"set0"`, Body: anc.Body}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.Node = fakeNode{anc: tc.anc} })
			f.mem.SetConflict("acme", server.Conflict{Key: "k", ETag: `"set1"`, Siblings: []server.Sibling{
				{ETag: `"s1"`, Writer: 1, Time: time.Unix(2, 0), Size: 15, Body: []byte(`{"v":"a","n":1}`)},
				{ETag: `"s2"`, Writer: 2, Time: time.Unix(3, 0), Deleted: true},
			}})
			ck, _ := f.signIn(t, local, admin)
			resp, body := f.req("GET", "/console/api/conflict?tenant=acme&key=k", local, ck, "", nil)
			var got ConflictBody
			if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != http.StatusOK || len(got.Siblings) != 2 {
				t.Fatalf("conflict: %d %s", resp.StatusCode, body)
			}
			if !tc.want {
				if got.Ancestor != nil || got.Changes != nil {
					t.Fatalf("an ancestor shown: %s", body)
				}
				return
			}
			want := [][]Change{
				{{Path: "/v", Op: "changed", From: json.RawMessage(`"o"`), To: json.RawMessage(`"a"`)}},
				{{Path: "", Op: "removed", From: json.RawMessage(`{"n":1,"v":"o"}`)}},
			}
			if got.Ancestor == nil || got.Ancestor.ETag != `"a0"` || got.Ancestor.Writer != "ab" || got.Ancestor.Source != anc.Source ||
				string(got.Ancestor.Body) != string(anc.Body) || !reflect.DeepEqual(got.Changes, want) {
				t.Fatalf("got %s\nwant changes %s", body, js(want))
			}
		})
	}
}

// FuzzDiff: for any two inputs Diff fails exactly when one is not a JSON
// value, a document differs from itself nowhere, and every change it
// reports is well formed and in path order.
func FuzzDiff(f *testing.F) {
	f.Add(`{"a":1,"b":[1,2]}`, `{"a":2,"c":{"d":null}}`)
	f.Add(`[1,[2,[3]]]`, `[1,[2]]`)
	f.Add(`{"a/b~":"x"}`, `"x"`)
	f.Add(`{`, `{}`)
	f.Add(`1e400`, `1E400`)
	f.Fuzz(func(t *testing.T, a, b string) {
		got, err := Diff([]byte(a), []byte(b))
		_, errA := decodeJSON([]byte(a))
		_, errB := decodeJSON([]byte(b))
		if (err != nil) != (errA != nil || errB != nil) {
			t.Fatalf("Diff(%q, %q): %v; the inputs: %v, %v", a, b, err, errA, errB)
		}
		if err != nil {
			return
		}
		if same, err := Diff([]byte(a), []byte(a)); err != nil || len(same) != 0 {
			t.Fatalf("Diff(%q, itself) = %s, %v", a, js(same), err)
		}
		for i, c := range got {
			ok := (c.Op == "added" && c.From == nil && json.Valid(c.To)) ||
				(c.Op == "removed" && c.To == nil && json.Valid(c.From)) ||
				(c.Op == "changed" && json.Valid(c.From) && json.Valid(c.To))
			if !ok || (i > 0 && got[i-1].Path > c.Path) {
				t.Fatalf("Diff(%q, %q): change %d malformed or out of order: %s", a, b, i, js(got))
			}
		}
	})
}
