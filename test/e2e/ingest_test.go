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
