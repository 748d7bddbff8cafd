package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestIngestFile runs 'cairn ingest' (the real binary) against a real node
// with a generated NDJSON file in which every 500th line is bad: the
// command exits 1 and lists the rejects, --allow-rejects exits 0, accepted
// records are readable, rejected ones are not, and everything acknowledged
// survives SIGKILL.
func TestIngestFile(t *testing.T) {
	dir := t.TempDir()
	p := startNode(t, filepath.Join(dir, "data"))
	const n = 20000
	var b strings.Builder
	bad := map[int]bool{}
	for i := 1; i <= n; i++ {
		switch {
		case i%1000 == 0:
			fmt.Fprintf(&b, `{"symbol":"S%06d","price":1.5,"volume":`+"\n", i) // cut: invalid JSON
			bad[i] = true
		case i%500 == 0:
			fmt.Fprintf(&b, `{"sym":"S%06d","price":1.5}`+"\n", i) // no key
			bad[i] = true
		default:
			fmt.Fprintf(&b, `{"symbol":"S%06d","price":%d.25,"volume":%d,"metadata":{"exchange":"XNAS","data_source":"sip"}}`+"\n", i, i%900, i)
		}
	}
	file := filepath.Join(dir, "in.ndjson")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ingest := func(args ...string) (int, string, string) {
		cmd := exec.Command(cairnBin, append([]string{"ingest"}, args...)...)
		cmd.Env = append(os.Environ(), "CAIRN_URL="+p.URL, "CAIRN_TOKEN="+p.Token, "CAIRN_TENANT=demo")
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	}

	code, out, errs := ingest("--key-field", "symbol", file)
	if code != 1 {
		t.Fatalf("exit %d with rejects, want 1\n%s%s", code, out, errs)
	}
	want := fmt.Sprintf("ingested %d records", n)
	if !strings.Contains(out, want) || !strings.Contains(out, fmt.Sprintf("%d accepted, %d rejected", n-len(bad), len(bad))) {
		t.Errorf("summary %q", out)
	}
	if !strings.Contains(errs, "line 500 (byte ") || !strings.Contains(errs, "key not found") || !strings.Contains(errs, "line 1000 (byte ") {
		t.Errorf("stderr does not list the first rejects:\n%s", errs)
	}
	if code, out, errs := ingest("--schema", "marketdata", "--allow-rejects", file); code != 0 {
		t.Errorf("--allow-rejects: exit %d\n%s%s", code, out, errs)
	}

	check := func(p *proc) {
		t.Helper()
		ctx := context.Background()
		for _, i := range []int{1, 499, 501, n - 1} {
			resp, body, err := p.do(ctx, "GET", fmt.Sprintf("S%06d", i), "")
			if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), fmt.Sprintf(`"volume":%d`, i)) {
				t.Errorf("GET S%06d: %v %v %s", i, err, resp.Status, body)
			}
		}
		for _, i := range []int{500, 1000} {
			if resp, _, err := p.do(ctx, "GET", fmt.Sprintf("S%06d", i), ""); err != nil || resp.StatusCode != 404 {
				t.Errorf("GET S%06d (rejected): %v %v, want 404", i, err, resp.Status)
			}
		}
	}
	check(p)
	p.kill()
	check(startNode(t, filepath.Join(dir, "data")))
}

// TestIngestRejectsFile: with --rejects, the rejected lines are written as
// they were read, from a file or from a pipe, and the message says what was
// stored and how to send only them; ingesting that file, fixed, stores them.
func TestIngestRejectsFile(t *testing.T) {
	dir := t.TempDir()
	p := startNode(t, filepath.Join(dir, "data"))
	good := []string{`{"id":"g1","v":1}`, `{"id":"g2","v":2}`, `{"id":"g3","v":3}`}
	bad := []string{`{"id":"b1","v":`, `{"v":"no id"}`, `{"id":"b3", "v": [1, 2,}`}
	input := strings.Join([]string{good[0], bad[0], good[1], bad[1], good[2], bad[2]}, "\n") // the last line has no newline
	file := filepath.Join(dir, "in.ndjson")
	if err := os.WriteFile(file, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	wantRejects := strings.Join(bad, "\n") + "\n"
	for _, c := range []struct{ name, arg, stdin string }{{"file", file, ""}, {"pipe", "-", input}} {
		rejects := filepath.Join(dir, c.name+".rejects")
		code, out, stderr := cairnRun(t, clientEnv(p), c.stdin, "ingest", "--key-field", "id", "--rejects", rejects, c.arg)
		if code != 1 || !strings.Contains(out, "3 accepted, 3 rejected") {
			t.Fatalf("%s: exit %d, stdout %q; want 1 and the summary\n%s", c.name, code, out, stderr)
		}
		resend := "cairn ingest --key-field id " + rejects
		if !strings.Contains(stderr, "3 records stored, 3 rejected: the rejected lines are in "+rejects) ||
			!strings.Contains(stderr, resend) || strings.Contains(stderr, "accept a partial ingest") {
			t.Errorf("%s: stderr\n%s\nwant what was stored and %q", c.name, stderr, resend)
		}
		if got, err := os.ReadFile(rejects); err != nil || string(got) != wantRejects {
			t.Errorf("%s: rejects file %q, %v; want\n%s", c.name, got, err, wantRejects)
		}
	}
	code, _, stderr := cairnRun(t, clientEnv(p), "", "ingest", "--key-field", "id", file)
	if code != 1 || !strings.Contains(stderr, "3 records stored, 3 rejected") || !strings.Contains(stderr, "--rejects FILE") ||
		strings.Contains(stderr, "accept a partial ingest") {
		t.Errorf("without --rejects: exit %d, stderr\n%s\nwant what was stored and a pointer to --rejects", code, stderr)
	}

	fixed := filepath.Join(dir, "file.rejects")
	os.WriteFile(fixed, []byte(`{"id":"b1","v":1}`+"\n"+`{"id":"b2","v":"now an id"}`+"\n"+`{"id":"b3","v":[1,2]}`+"\n"), 0o600)
	if code, out, stderr := cairnRun(t, clientEnv(p), "", "ingest", "--key-field", "id", fixed); code != 0 || !strings.Contains(out, "3 accepted, 0 rejected") {
		t.Fatalf("the fixed rejects: exit %d\n%s%s", code, out, stderr)
	}
	for _, k := range []string{"b1", "b2", "b3"} {
		if resp, _, err := p.do(context.Background(), "GET", k, ""); err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s after sending the fixed rejects: %v %v", k, resp, err)
		}
	}
}
