package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// importRun runs 'cairn import ARGS…' to its end.
func importRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(cairnBin, append([]string{"import"}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// importLine is line i of the generated import files: a document named
// k%08d, so that the stored keys of a prefix of the file list in file order.
func importLine(i int) string {
	return fmt.Sprintf(`{"id":"k%08d","price":%d.25,"volume":%d,"pad":"%s"}`, i, i%900, i, strings.Repeat("x", i%64))
}

// TestImportServeReplicate: 'cairn import' loads a file with bad lines into
// a fresh data directory (rejects listed by line, exit 1), 'cairn serve'
// on that directory serves the loaded documents with ETags and not the
// rejected ones, and replicates them through an fs backend to a second
// node.
func TestImportServeReplicate(t *testing.T) {
	dir := t.TempDir()
	const n = 2500
	var b strings.Builder
	bad := map[int]bool{}
	for i := 1; i <= n; i++ {
		switch {
		case i%1000 == 0:
			b.WriteString(importLine(i)[:20] + "\n") // cut: invalid JSON
			bad[i] = true
		case i%700 == 0:
			fmt.Fprintf(&b, `{"name":"k%08d"}`+"\n", i) // no key
			bad[i] = true
		case i == 333:
			b.WriteString(`{"id":"","v":1}` + "\n") // a key doc.ValidateKey refuses
			bad[i] = true
		default:
			b.WriteString(importLine(i) + "\n")
		}
	}
	file := filepath.Join(dir, "in.ndjson")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")

	if code, _, errs := importRun(t, "--tenant", "demo", "--key-field", "id", file); code != 2 || !strings.Contains(errs, "--data-dir is required") {
		t.Errorf("no --data-dir: exit %d, %q", code, errs)
	}
	if code, _, errs := importRun(t, "--data-dir", data, "--tenant", "Demo!", "--key-field", "id", file); code != 2 || !strings.Contains(errs, "--tenant") {
		t.Errorf("bad --tenant: exit %d, %q", code, errs)
	}
	if code, _, errs := importRun(t, "--data-dir", data, "--tenant", "demo", "--key-field", "id", filepath.Join(dir, "missing")); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, errs)
	}

	code, out, errs := importRun(t, "--data-dir", data, "--tenant", "demo", "--key-field", "id", file)
	if code != 1 {
		t.Fatalf("exit %d with rejects, want 1\n%s%s", code, out, errs)
	}
	if want := fmt.Sprintf("imported %d records", n); !strings.Contains(out, want) ||
		!strings.Contains(out, fmt.Sprintf("%d loaded, %d rejected", n-len(bad), len(bad))) {
		t.Errorf("summary %q", out)
	}
	for _, want := range []string{"line 333 (byte ", "invalid_key", "line 700 (byte ", "key not found", "line 1000 (byte ", "invalid JSON"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}

	shared := t.TempDir()
	args := []string{"--backend", "shared=fs:" + shared, "--reconcile-interval", "0"}
	a := startNode(t, data, args...)
	ctx := context.Background()
	etags := nodeETags(t, a)
	if len(etags) != n-len(bad) {
		t.Errorf("node lists %d documents, want %d", len(etags), n-len(bad))
	}
	for i := 1; i <= n; i++ {
		key := fmt.Sprintf("k%08d", i)
		if bad[i] {
			if _, ok := etags[key]; ok {
				t.Errorf("rejected line %d stored", i)
			}
			continue
		}
		if i%97 != 1 {
			continue
		}
		resp, body, err := a.do(ctx, "GET", key, "")
		if err != nil || resp.StatusCode != 200 || string(body) != importLine(i) || resp.Header.Get("ETag") == "" || resp.Header.Get("ETag") != etags[key] {
			t.Fatalf("GET %s: %v %v %q ETag %q (listed %q)", key, err, resp.Status, body, resp.Header.Get("ETag"), etags[key])
		}
	}

	// Replication: a round on A pushes the imported documents to the
	// backend; a round on B, with an empty directory, pulls them.
	bnode := startNode(t, t.TempDir(), args...)
	for _, p := range []*proc{a, bnode} {
		cmd := exec.Command(cairnBin, "reconcile", "run", "--wait", "--tenant", "demo")
		cmd.Env = append(os.Environ(), "CAIRN_ADMIN_URL=http://"+adminAddr(t, p))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cairn reconcile run: %v\n%s", err, out)
		}
	}
	if got := nodeETags(t, bnode); len(got) != len(etags) {
		t.Errorf("B has %d documents after the rounds, want %d", len(got), len(etags))
	}
	if resp, body, err := bnode.do(ctx, "GET", "k00000001", ""); err != nil || resp.StatusCode != 200 || string(body) != importLine(1) {
		t.Errorf("GET k00000001 on B: %v %v %q", err, resp.Status, body)
	}

	// A running node's directory is refused, and nothing is written.
	code, out, errs = importRun(t, "--data-dir", data, "--tenant", "demo", "--key-field", "id", file)
	if code != 1 || !strings.Contains(errs, "in use by another process") || !strings.Contains(errs, "a running node, or an import or export): stop it first") || strings.Contains(out, "imported") {
		t.Errorf("import into a running node's directory: exit %d\n%s%s", code, out, errs)
	}
	if got := nodeETags(t, a); len(got) != len(etags) {
		t.Errorf("after the refused import A lists %d documents, want %d", len(got), len(etags))
	}
}

// TestImportKilled: SIGKILL during an import leaves a data directory that a
// node opens, holding every batch import reported durable and nothing but
// whole batches: the stored documents are exactly the file's first M lines,
// each intact, with M at least the last line reported.
func TestImportKilled(t *testing.T) {
	cmd, durable, file, data := importUntilDurable(t, nil)
	cmd.Process.Signal(syscall.SIGKILL)
	werr := cmd.Wait()
	if ee := (*exec.ExitError)(nil); !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the import ended before the kill (%v): nothing was tested", werr)
	}
	p := startNode(t, data)
	etags := nodeETags(t, p)
	m := len(etags)
	if m < durable {
		t.Fatalf("after the kill %d documents are stored, but import reported lines through %d durable", m, durable)
	}
	for i := 1; i <= m; i++ {
		if _, ok := etags[fmt.Sprintf("k%08d", i)]; !ok {
			t.Fatalf("%d documents stored, but not line %d's: not a prefix of the file", m, i)
		}
	}
	ctx := context.Background()
	for _, i := range []int{1, durable, m} {
		resp, body, err := p.do(ctx, "GET", fmt.Sprintf("k%08d", i), "")
		if err != nil || resp.StatusCode != 200 || string(body) != importLine(i) {
			t.Fatalf("GET line %d: %v %v %q", i, err, resp.Status, body)
		}
	}
	if err := p.stop(); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	// The directory takes a second import after the node stopped: the rest
	// of the file loads on top.
	if code, out, errs := importRun(t, "--data-dir", data, "--tenant", "demo", "--key-field", "id", file); code != 0 {
		t.Fatalf("import after the crash: exit %d\n%s%s", code, out, errs)
	}
}

// TestImportInterrupted: an import stopped by SIGINT or SIGTERM ends after
// its last whole batch, says through which line the file is stored, and
// exits as a shell reports the signal (130, 143), not as a failure (1).
func TestImportInterrupted(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			var stderr bytes.Buffer
			cmd, _, _, _ := importUntilDurable(t, &stderr)
			cmd.Process.Signal(sig)
			werr := cmd.Wait()
			ee := (*exec.ExitError)(nil)
			if !errors.As(werr, &ee) {
				t.Fatalf("the import ended before the signal (%v): nothing was tested", werr)
			}
			if got, want := ee.ExitCode(), 128+int(sig); got != want {
				t.Fatalf("exit %d after %v, want %d; stderr:\n%s", got, sig, want, stderr.String())
			}
			if !strings.Contains(stderr.String(), "are stored") {
				t.Fatalf("stderr does not say how far the import got:\n%s", stderr.String())
			}
		})
	}
}

// importUntilDurable starts an import of a 300,000-line file (dozens of
// 1 MiB batches) and returns once it has reported its first durable batch,
// with more in flight: the process, the last line reported durable, the
// file and the data directory.
func importUntilDurable(t *testing.T, stderr io.Writer) (cmd *exec.Cmd, durable int, file, data string) {
	t.Helper()
	dir := t.TempDir()
	const n = 300000 // ~36 MiB
	f, err := os.Create(filepath.Join(dir, "in.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 1; i <= n; i++ {
		w.WriteString(importLine(i) + "\n")
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	data = filepath.Join(dir, "data")
	cmd = exec.Command(cairnBin, "import", "--data-dir", data, "--tenant", "demo", "--key-field", "id",
		"--max-record-bytes", "4KiB", "--progress", f.Name())
	cmd.Stderr = stderr
	// A pipe of the test's own, which Wait does not close under the reader
	// below.
	stdout, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		stdout.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); stdout.Close() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "durable through line %d", &durable); err == nil {
			break
		}
	}
	if durable == 0 {
		t.Fatal("import reported no durable batch before it ended")
	}
	go io.Copy(io.Discard, stdout) // the rest of its progress, which it must not block on
	return cmd, durable, f.Name(), data
}
