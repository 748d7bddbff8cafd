package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/store"
)

// TestExportImportRoundTrip: a tenant exported from one data directory and
// imported with --schema export into another holds the same documents with
// the same bodies; deleted documents and other tenants stay out, a body
// stored with line breaks comes back on one line, and the file appears only
// once complete.
func TestExportImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	st, err := store.Open(src, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{
		"a":             `{"v":1}`,
		`q"uote\ slash`: `[1,"two",{"3":null}]`,
		"ünï/cödé":      `"just a string"`,
		"n":             `12.5e3`,
		// As large as a node takes by default: its line is longer, and
		// import's default --max-record-bytes bounds the document.
		"big": `"` + strings.Repeat("x", 1<<20-2) + `"`,
	}
	for k, v := range docs {
		if _, err := st.Put(ctx, "acme", k, []byte(v), doc.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range map[string]string{"pretty": "{\n  \"a\": [1,\n 2],\r\n \"b\": \"x y\"\n}\n", "gone": `{}`, "spaced": " \t{\"a\"\t: 1} "} {
		if _, err := st.Put(ctx, "acme", k, []byte(v), doc.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	docs["pretty"] = `{"a":[1,2],"b":"x y"}`
	docs["spaced"] = "{\"a\"\t: 1}"
	if _, err := st.Delete(ctx, "acme", "gone", doc.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "other", "a", []byte(`{"other":true}`), doc.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(dir, "acme.ndjson")
	var out, errb strings.Builder
	if code := Run(ctx, []string{"export", "--data-dir", src, "--tenant", "acme", file}, Env{Stdout: &out, Stderr: &errb}); code != exitOK {
		t.Fatalf("export: exit %d\n%s", code, &errb)
	}
	if !strings.Contains(errb.String(), "exported 7 documents of tenant acme") {
		t.Errorf("export summary: %s", &errb)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".acme.ndjson*")); len(left) > 0 {
		t.Errorf("the temporary file is left: %v", left)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("a new export file: %v %v, want mode 0600 (it holds every document)", fi.Mode(), err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d lines, want 7", len(lines))
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("line is not JSON: %s", l)
		}
	}

	dst := filepath.Join(dir, "dst")
	out.Reset()
	errb.Reset()
	if code := Run(ctx, []string{"import", "--data-dir", dst, "--tenant", "acme", "--schema", "export", file}, Env{Stdout: &out, Stderr: &errb}); code != exitOK {
		t.Fatalf("import: exit %d\n%s%s", code, &out, &errb)
	}
	st, err = store.Open(dst, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := map[string]string{}
	for rec, err := range st.List(ctx, "acme", store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got[rec.Key] = string(rec.Body)
	}
	if len(got) != len(docs) {
		t.Errorf("imported %d documents, want %d: %q", len(got), len(docs), got)
	}
	for k, v := range docs {
		if got[k] != v {
			t.Errorf("%q: imported %q, want %q", k, got[k], v)
		}
	}
}

// TestExportRefusals: a data directory that holds no store (a typo) is
// not created and exported empty; bad flags are usage errors; an export of
// a tenant with nothing says which tenants have documents.
func TestExportRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "nodata")
	var out, errb strings.Builder
	if code := Run(ctx, []string{"export", "--data-dir", missing, "--tenant", "acme", "-"}, Env{Stdout: &out, Stderr: &errb}); code != exitFail ||
		!strings.Contains(errb.String(), "holds no cairn data directory") {
		t.Errorf("export of %s: exit %d, %s", missing, code, &errb)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("the export created %s", missing)
	}
	data := filepath.Join(dir, "data")
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "acme", "a", []byte(`{}`), doc.Precondition{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--tenant", "acme", "-"}, "--data-dir is required"},
		{[]string{"export", "--data-dir", data, "-"}, "--tenant is required"},
		{[]string{"export", "--data-dir", data, "--tenant", "No Such", "-"}, "--tenant"},
		{[]string{"export", "--data-dir", data, "--tenant", "acme"}, "want exactly one FILE"},
		{[]string{"export", "--data-dir", data, "--tenant", "acme", filepath.Join(data, "identity.json")}, "inside --data-dir"},
		{[]string{"export", "--data-dir", data, "--tenant", "acme", filepath.Join(data, "pebble", "x.ndjson")}, "inside --data-dir"},
	} {
		out.Reset()
		errb.Reset()
		if code := Run(ctx, tc.args, Env{Stdout: &out, Stderr: &errb}); code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", tc.args[1:], code, &errb, tc.want)
		}
	}
	// A running node holds the directory.
	errb.Reset()
	if code := Run(ctx, []string{"export", "--data-dir", data, "--tenant", "acme", "-"}, Env{Stdout: &out, Stderr: &errb}); code != exitFail ||
		!strings.Contains(errb.String(), "another process holds it (a running node, or an import or export): stop it first") {
		t.Errorf("export of a directory in use: exit %d, %s", code, &errb)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	// A tenant the store never held (a typo) is refused, and an earlier
	// export under FILE is left as it was.
	earlier := filepath.Join(dir, "earlier.ndjson")
	os.WriteFile(earlier, []byte(`{"key":"a","doc":{}}`+"\n"), 0o600)
	if code := Run(ctx, []string{"export", "--data-dir", data, "--tenant", "acmee", earlier}, Env{Stdout: &out, Stderr: &errb}); code != exitFail ||
		!strings.Contains(errb.String(), "holds no documents or deletions of tenant acmee; tenants there: acme") {
		t.Errorf("export of an unknown tenant: exit %d, stderr %s", code, &errb)
	}
	if b, _ := os.ReadFile(earlier); string(b) != `{"key":"a","doc":{}}`+"\n" {
		t.Errorf("the refused export replaced %s: %q", earlier, b)
	}
}

// TestExportSiblings: a document with open siblings is written with all
// of them, a deletion as null, and import rejects the line.
func TestExportSiblings(t *testing.T) {
	v := func(replica uint64, tomb bool) doc.Version {
		return doc.Version{Vector: doc.Vector{{Replica: replica, Counter: 1}}, Writer: replica, Tombstone: tomb,
			Hash: doc.HashBody(map[bool][]byte{false: []byte(`{"n":1}`), true: nil}[tomb])}
	}
	ver, body, err := doc.MakeSiblings([]doc.Sibling{{Version: v(1, false), Body: []byte(`{"n":1}`)}, {Version: v(2, true)}})
	if err != nil {
		t.Fatal(err)
	}
	rec := store.Record{Key: "k", Version: ver, Body: body}
	line, err := appendExportLine(nil, &rec)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Key      string
		Siblings []json.RawMessage
	}
	if err := json.Unmarshal(line, &got); err != nil || got.Key != "k" || len(got.Siblings) != 2 {
		t.Fatalf("line %s: %+v, %v", line, got, err)
	}
	if s := string(got.Siblings[0]) + " " + string(got.Siblings[1]); s != `{"n":1} null` && s != `null {"n":1}` {
		t.Errorf("siblings %s", s)
	}
}

// TestExportDamagedStore: an export that meets a damaged table exits 1
// naming the damage and the runbook entry, writes nothing, and does not
// panic (Pebble's own answer to a damaged block).
// damagedStore writes 6,000 documents of tenant acme (keys k00000 on) to
// a store in a new directory, closes it and damages the data blocks of
// its larger tables; it returns the directory.
func damagedStore(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	// Small memtables, so that the documents reach tables on disk.
	st, err := store.Open(src, store.Options{MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 6000 {
		pad := make([]byte, 500) // hex of random bytes: tables do not compress it away
		for j := range pad {
			pad[j] = "0123456789abcdef"[rnd.IntN(16)]
		}
		if _, err := st.Put(ctx, "acme", fmt.Sprintf("k%05d", i), []byte(`{"pad":"`+string(pad)+`"}`), doc.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(src, "pebble", "*.sst"))
	damaged := 0
	for _, name := range tables {
		fi, err := os.Stat(name)
		if err != nil || fi.Size() < 256<<10 {
			continue
		}
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte(strings.Repeat("\xff", 64)), fi.Size()/3) // inside its data blocks
		f.Close()
		damaged++
	}
	if damaged == 0 {
		t.Fatalf("no table of documents among %v to damage", tables)
	}
	return src
}

func TestExportDamagedStore(t *testing.T) {
	src := damagedStore(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "acme.ndjson")
	code, _, stderr := run(t, nil, "", "export", "--data-dir", src, "--tenant", "acme", file)
	if code != exitFail || !strings.Contains(stderr, "is damaged") || !strings.Contains(stderr, `"Corrupt local store"`) || strings.Contains(stderr, "goroutine") {
		t.Fatalf("export of a damaged store: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("a failed export left %s (%v)", file, err)
	}
}
