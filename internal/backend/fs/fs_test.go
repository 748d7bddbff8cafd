package fs_test

import (
	"bufio"
	"context"
	"fmt"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/backendtest"
	"github.com/cairnstore/cairn/internal/backend/fs"
	"github.com/cairnstore/cairn/internal/fault"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if root := os.Getenv(helperEnv); root != "" {
		os.Exit(helper(root))
	}
	goleak.VerifyTestMain(m)
}

func open(t *testing.T, root string) *fs.FS {
	t.Helper()
	b, err := fs.Open("fs", root)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return open(t, t.TempDir()) })
}

func TestOpenConfigError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"", file} {
		_, err := fs.Open("fs", root)
		if fault.ClassOf(err) != fault.Config {
			t.Errorf("Open(%q) = %v, want class config", root, err)
		}
	}
}

// TestNoEscape writes keys that would leave the tenant's directory under a
// naive mapping and checks that every file created is inside it, with
// components a file system cannot misread, and that invalid names create
// nothing at all.
func TestNoEscape(t *testing.T) {
	root := t.TempDir()
	b := open(t, filepath.Join(root, "store"))
	ctx := context.Background()
	keys := append(backendtest.AdversarialKeys(),
		"../../../../../../../../tmp/x", "..\\..\\x", "a/../../../b", "%2e%2e%2f", "%2F", "/etc/passwd")
	for _, k := range keys {
		v := backendtest.Version([]byte("{}"), 1, 1, false)
		if _, err := b.Put(ctx, "t", k, v, []byte("{}"), backend.Precondition{}); err != nil {
			t.Fatalf("Put(%.40q): %v", k, err)
		}
	}
	for _, bad := range []struct{ tenant, key string }{
		{"..", "x"}, {"t/../u", "x"}, {"t", "a\x00/../../x"}, {"t", strings.Repeat("a", 1025)}, {".tmp", "x"}, {".locks", "x"},
	} {
		v := backendtest.Version([]byte("{}"), 1, 1, false)
		if _, err := b.Put(ctx, bad.tenant, bad.key, v, []byte("{}"), backend.Precondition{}); fault.ClassOf(err) != fault.Invalid {
			t.Fatalf("Put(%q, %.40q) = %v, want class invalid", bad.tenant, bad.key, err)
		}
	}
	tdir := filepath.Join(root, "store", "t")
	files := 0
	err := filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(root, "store"), p)
		switch {
		case p == root || rel == "." || rel == ".tmp" || rel == ".locks" || rel == "t":
			return nil
		case rel == filepath.Join(".locks", "t"):
			return nil
		case !strings.HasPrefix(p, tdir+string(filepath.Separator)):
			return fmt.Errorf("%s is outside the tenant directory", p)
		case d.Name() == "." || d.Name() == ".." || len(d.Name()) > 255:
			return fmt.Errorf("bad component %q", d.Name())
		}
		if !d.IsDir() {
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != len(keys) {
		t.Fatalf("%d files under the tenant directory, want %d (one per key)", files, len(keys))
	}
	tmp, _ := os.ReadDir(filepath.Join(root, "store", ".tmp"))
	if len(tmp) != 0 {
		t.Fatalf("temporary files left behind: %v", tmp)
	}
}

// TestLongKeySplit checks that a key too long for one path component is
// split into chunk directories, and that deleting it removes them.
func TestLongKeySplit(t *testing.T) {
	b := open(t, t.TempDir())
	ctx := context.Background()
	key := strings.Repeat("/", 1024) // 3072 escaped bytes, 16 components
	v := backendtest.Version([]byte("{}"), 1, 1, false)
	if _, err := b.Put(ctx, "t", key, v, []byte("{}"), backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(filepath.Join(b.Root(), "t"), b.Path("t", key))
	comps := strings.Split(rel, string(filepath.Separator))
	if len(comps) != 16 {
		t.Fatalf("key path has %d components, want 16", len(comps))
	}
	if err := b.Delete(ctx, "t", key, backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(filepath.Join(b.Root(), "t"))
	if len(left) != 0 {
		t.Fatalf("chunk directories left after delete: %v", left)
	}
}

const helperEnv = "CAIRN_FS_BACKEND_HELPER"

// TestTwoProcesses runs two copies of this test binary against one root:
// both race create-only writes on the same keys (exactly one may win each)
// and if-match increments of one counter (no increment may be lost). The
// processes start together when the test closes their stdin.
func TestTwoProcesses(t *testing.T) {
	root := t.TempDir()
	b := open(t, root)
	ctx := context.Background()
	v := backendtest.Version([]byte("0"), 1, 1, false)
	if _, err := b.Put(ctx, "t", "counter", v, []byte("0"), backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	const procs = 2
	outs := make([]*strings.Builder, procs)
	cmds := make([]*exec.Cmd, procs)
	starts := make([]func() error, procs)
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+root)
		outs[i] = &strings.Builder{}
		cmd.Stdout = outs[i]
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i], starts[i] = cmd, stdin.Close
	}
	for _, start := range starts {
		start()
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, outs[i])
		}
	}
	wins := map[string]int{}
	for _, out := range outs {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			if k, ok := strings.CutPrefix(sc.Text(), "won "); ok {
				wins[k]++
			}
		}
	}
	for r := range helperRounds {
		if k := fmt.Sprintf("race-%d", r); wins[k] != 1 {
			t.Errorf("%s: %d create-only winners across processes, want 1", k, wins[k])
		}
	}
	o, err := b.Get(ctx, "t", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(o.Body), fmt.Sprint(procs*helperIncrements); got != want {
		t.Fatalf("counter = %s, want %s: an if-match increment was lost across processes", got, want)
	}
}

const helperRounds, helperIncrements = 20, 30

// helper is the child process of TestTwoProcesses.
func helper(root string) int {
	b, err := fs.Open("fs", root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bufio.NewReader(os.Stdin).ReadString('\n') // wait for the start (EOF)
	ctx := context.Background()
	pid := os.Getpid()
	for r := range helperRounds {
		key := fmt.Sprintf("race-%d", r)
		body := fmt.Sprintf(`{"pid":%d}`, pid)
		v := backendtest.Version([]byte(body), uint64(pid), 1, false)
		_, err := b.Put(ctx, "t", key, v, []byte(body), backend.Precondition{IfNoneMatch: true})
		switch {
		case err == nil:
			fmt.Println("won", key)
		case fault.ClassOf(err) != fault.PreconditionFailed:
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	for done := 0; done < helperIncrements; {
		o, err := b.Get(ctx, "t", "counter")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var n int
		fmt.Sscan(string(o.Body), &n)
		body := fmt.Sprint(n + 1)
		v := backendtest.Version([]byte(body), uint64(pid), int64(n+1), false)
		_, err = b.Put(ctx, "t", "counter", v, []byte(body), backend.Precondition{IfMatch: o.ETag})
		switch {
		case err == nil:
			done++
		case fault.ClassOf(err) != fault.PreconditionFailed:
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}
