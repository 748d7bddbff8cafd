package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
)

// TestImportUsage: bad flags are refused with a message naming the flag
// and exit 2, before the data directory is created.
func TestImportUsage(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "in.ndjson")
	if err := os.WriteFile(file, []byte(`{"id":"a"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	base := []string{"import", "--data-dir", data, "--tenant", "demo"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "--tenant", "demo", "--key-field", "id", file}, "--data-dir is required"},
		{[]string{"import", "--data-dir", data, "--key-field", "id", file}, "--tenant is required"},
		{append(base, "--tenant", "No Such", "--key-field", "id", file), "--tenant"},
		{append(base, file), "give --key-field or --key-pointer"},
		{append(base, "--key-field", "id", "--key-pointer", "/id", file), "not both"},
		{append(base, "--schema", "marketdata", "--key-pointer", "/id", file), "names each document by its symbol"},
		{append(base, "--schema", "csv", "--key-field", "id", file), `--schema "csv"`},
		{append(base, "--key-field", "id", "--max-record-bytes", "0", file), "--max-record-bytes 0"},
		{append(base, "--key-field", "id"), "want exactly one FILE"},
		{append(base, "--key-field", "id", file, file), "want exactly one FILE"},
		{append(base, "--key-pointer", "id", file), "must start with '/'"},
	} {
		var out, errb strings.Builder
		code := Run(context.Background(), tc.args, Env{Stdout: &out, Stderr: &errb})
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args[1:], code, errb.String(), tc.want)
		}
	}
	for _, in := range []string{filepath.Join(dir, "missing.ndjson"), dir} {
		var out, errb strings.Builder
		code := Run(context.Background(), append(base, "--key-field", "id", in), Env{Stdout: &out, Stderr: &errb})
		if code != exitFail || !strings.Contains(errb.String(), in) {
			t.Errorf("import of %s: exit %d, stderr %q; want 1 naming it", in, code, errb.String())
		}
	}
	var out, errb strings.Builder
	if code := Run(context.Background(), append(base, "--key-field", "id", "-"), Env{Stdout: &out, Stderr: &errb}); code != exitUsage ||
		!strings.Contains(errb.String(), "cannot read stdin") || !strings.Contains(errb.String(), "cairn ingest -") {
		t.Errorf("import of -: exit %d, stderr %q; want 2 (a usage error) saying stdin is not read, and what to do", code, errb.String())
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("a refused import created the data directory: %v", err)
	}
}

// TestImportLoads: an import in-process loads the accepted records, each
// with its body as read, and reports the rejected one by line.
func TestImportLoads(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "in.ndjson")
	in := `{"id":"a","v":1}` + "\n" + `{"id":"b","v":2` + "\n" + "\n" + `{"id":"c","v":3}` + "\n"
	if err := os.WriteFile(file, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	code := Run(context.Background(), []string{"import", "--data-dir", filepath.Join(dir, "data"), "--tenant", "demo",
		"--key-field", "id", "--progress", file}, Env{Stdout: &out, Stderr: &errb})
	if code != exitFail {
		t.Fatalf("exit %d with a reject, want 1\n%s%s", code, &out, &errb)
	}
	for _, want := range []string{"imported 3 records", "2 loaded, 1 rejected (1 malformed", "durable through line 4"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, &out)
		}
	}
	if !strings.Contains(errb.String(), "line 2 (byte 17): malformed") {
		t.Errorf("stderr does not list line 2:\n%s", &errb)
	}
	st, err := store.Open(filepath.Join(dir, "data"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for key, want := range map[string]string{"a": `{"id":"a","v":1}`, "c": `{"id":"c","v":3}`} {
		if rec, err := st.Get(ctx, "demo", key); err != nil || string(rec.Body) != want {
			t.Errorf("Get %s: %v %q, want %q", key, err, rec.Body, want)
		}
	}
	var keys []string
	for rec, err := range st.List(ctx, "demo", store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, rec.Key)
	}
	if strings.Join(keys, ",") != "a,c" {
		t.Errorf("stored keys %q, want a,c", keys)
	}
}

// TestImportDepthAsNode: import bounds nesting as the node does for a PUT
// (server.DefaultMaxDepth): a deeper record is rejected, where import
// stored documents the node then served but would not take back.
func TestImportDepthAsNode(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "in.ndjson")
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	in := `{"id":"ok","v":` + nest(server.DefaultMaxDepth-1) + "}\n" + `{"id":"deep","v":` + nest(server.DefaultMaxDepth) + "}\n"
	if err := os.WriteFile(file, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	code := Run(context.Background(), []string{"import", "--data-dir", filepath.Join(dir, "data"), "--tenant", "demo",
		"--key-field", "id", file}, Env{Stdout: &out, Stderr: &errb})
	if code != exitFail || !strings.Contains(out.String(), "1 loaded, 1 rejected") || !strings.Contains(errb.String(), "nesting too deep") {
		t.Fatalf("exit %d\n%s%s", code, &out, &errb)
	}
}

// TestImportDamagedStore: an import into a store whose tables are damaged
// stops at the first record it cannot write and names the damage and the
// runbook entry, as export and serve do, not a bare Pebble error.
func TestImportDamagedStore(t *testing.T) {
	src := damagedStore(t)
	var in strings.Builder
	for i := range 6000 {
		fmt.Fprintf(&in, `{"id":"k%05d","v":%d}`+"\n", i, i)
	}
	file := filepath.Join(t.TempDir(), "in.ndjson")
	if err := os.WriteFile(file, []byte(in.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, nil, "", "import", "--data-dir", src, "--tenant", "acme", "--key-field", "id", file)
	if code != exitFail || !strings.Contains(stderr, "is damaged") || !strings.Contains(stderr, `"Corrupt local store"`) ||
		!strings.Contains(stderr, "stopped before any record was stored") || strings.Contains(stderr, "goroutine") {
		t.Fatalf("import into a damaged store: exit %d\n%s%s", code, stdout, stderr)
	}
}
