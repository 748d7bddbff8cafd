package fs_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// putEmpty writes the document {} at tenant/k, unconditionally: the tests
// of leaves and splits care where objects go, not what they hold.
func putEmpty(b *fs.FS, tenant, k string) error {
	v := backendtest.Version([]byte("{}"), 1, 1, false)
	_, err := b.Put(context.Background(), tenant, k, v, []byte("{}"), backend.Precondition{})
	return err
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return open(t, t.TempDir()) })
}

// TestConformanceSplits runs the suite with leaves of at most 3 objects, so
// that nearly every write of a new key splits a leaf, concurrently with
// other writers, readers and listings.
func TestConformanceSplits(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		b := open(t, t.TempDir())
		fs.SetLeafMax(b, 3)
		return b
	})
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
	keys := append(backendtest.AdversarialKeys(),
		"../../../../../../../../tmp/x", "..\\..\\x", "a/../../../b", "%2e%2e%2f", "%2F", "/etc/passwd")
	for _, k := range keys {
		if err := putEmpty(b, "t", k); err != nil {
			t.Fatalf("Put(%.40q): %v", k, err)
		}
	}
	for _, bad := range []struct{ tenant, key string }{
		{"..", "x"}, {"t/../u", "x"}, {"t", "a\x00/../../x"}, {"t", strings.Repeat("a", 1025)}, {".tmp", "x"}, {".locks", "x"},
	} {
		if err := putEmpty(b, bad.tenant, bad.key); fault.ClassOf(err) != fault.Invalid {
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
		case rel == filepath.Join(".locks", "t") || rel == ".layout":
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
	if files != len(keys)+1 {
		t.Fatalf("%d files under the tenant directory, want %d (one per key, and the index)", files, len(keys)+1)
	}
	tmp, _ := os.ReadDir(filepath.Join(root, "store", ".tmp"))
	if len(tmp) != 0 {
		t.Fatalf("temporary files left behind: %v", tmp)
	}
}

// TestLongKeyHashed checks that a key too long for one file name is stored
// under a hashed name in its leaf, lists in order, and is removed by Delete.
func TestLongKeyHashed(t *testing.T) {
	b := open(t, t.TempDir())
	ctx := context.Background()
	long := strings.Repeat("/", 1024) // 3072 escaped bytes
	keys := []string{"-", long, "0"}  // '-' < '/' < '0'
	for _, k := range keys {
		if err := putEmpty(b, "t", k); err != nil {
			t.Fatal(err)
		}
	}
	p, err := b.Path("t", long)
	if err != nil {
		t.Fatal(err)
	}
	if name := filepath.Base(p); !strings.HasPrefix(name, "~L") || len(name) != 34 {
		t.Fatalf("long key stored as %q, want ~L and 32 hex digits", name)
	}
	page, err := b.List(ctx, "t", backend.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 3 || page.Entries[1].Key != long {
		t.Fatalf("List = %d entries, want the long key second of 3", len(page.Entries))
	}
	if err := b.Delete(ctx, "t", long, backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("the long key's file is left after Delete: %v", err)
	}
}

// TestOldLayoutRefused: a root holding objects but no layout marker is the
// older one-file-per-key layout, which Open refuses with a config error.
func TestOldLayoutRefused(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "demo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "demo", "k"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Open("fs", root); fault.ClassOf(err) != fault.Config || !strings.Contains(err.Error(), "older") {
		t.Fatalf("Open of an old-layout root = %v, want a config error naming the older layout", err)
	}
	// A fresh root is marked, and opens again.
	fresh := t.TempDir()
	open(t, fresh)
	open(t, fresh)
}

// TestRootEmptiedWhileOpen: a root emptied under an open backend (or an
// empty volume mounted in its place) takes writes again, and opens again
// with what they wrote, rather than failing for want of its internal
// directories until the process restarts.
func TestRootEmptiedWhileOpen(t *testing.T) {
	root := t.TempDir()
	b := open(t, root)
	if err := putEmpty(b, "demo", "before"); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.DeleteBlob(context.Background(), "feed/x", backend.Precondition{}); err != nil {
		t.Fatalf("a blob delete in the emptied root: %v", err)
	}
	if err := putEmpty(b, "demo", "after"); err != nil {
		t.Fatalf("a write to the emptied root: %v", err)
	}
	again := open(t, root)
	if _, err := again.Get(context.Background(), "demo", "after"); err != nil {
		t.Fatalf("the write after the root was emptied, read through a new Open: %v", err)
	}
	// A root that is gone is not made again.
	gone := t.TempDir()
	c := open(t, gone)
	if err := os.RemoveAll(gone); err != nil {
		t.Fatal(err)
	}
	if err := putEmpty(c, "demo", "k"); err == nil {
		t.Error("a write to a root that is gone succeeded")
	}
	if _, err := os.Stat(gone); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("the write made the root again: %v", err)
	}
}

// TestSplitUnderReaders writes keys into leaves of at most 4 objects while
// readers Get and List keys written before: no reader may miss one, though
// their files move to new leaves under them (and the readers take no lock).
func TestSplitUnderReaders(t *testing.T) {
	b := open(t, t.TempDir())
	fs.SetLeafMax(b, 4)
	ctx := context.Background()
	put := func(k string) {
		if err := putEmpty(b, "t", k); err != nil {
			t.Error(err)
		}
	}
	// Stable keys, in every leaf-to-be: "s<i>" and the writers' keys "w<i>"
	// interleave ('s' < 'w', and both spread over the range by a digit).
	var stable []string
	for i := range 40 {
		k := fmt.Sprintf("%d-s%02d", i%10, i)
		stable = append(stable, k)
		put(k)
	}
	slices.Sort(stable)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range 120 {
			put(fmt.Sprintf("%d-w%03d", i%10, i))
		}
	})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, k := range stable {
					if _, err := b.Get(ctx, "t", k); err != nil {
						t.Errorf("Get(%s) during splits: %v", k, err)
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			var got []string
			opts := backend.ListOptions{Limit: 7}
			for {
				p, err := b.List(ctx, "t", opts)
				if err != nil {
					t.Errorf("List during splits: %v", err)
					return
				}
				for _, e := range p.Entries {
					if strings.Contains(e.Key, "-s") {
						got = append(got, e.Key)
					}
				}
				if !p.More {
					break
				}
				opts.StartAfter = p.Entries[len(p.Entries)-1].Key
			}
			if !slices.Equal(got, stable) {
				t.Errorf("a listing during splits saw %d of the %d stable keys", len(got), len(stable))
				return
			}
		}
	})
	wg.Wait()
	leaves, _ := os.ReadDir(filepath.Join(b.Root(), "t"))
	if len(leaves) < 20 {
		t.Fatalf("%d entries in the tenant directory after 160 keys in leaves of 4: the leaves did not split", len(leaves))
	}
}

// TestReadAcrossSplit moves the file a Get is about to open: between the
// Get's reading of the index and its opening of the file, other writes
// split the leaf and the key's file goes to a new leaf. The Get must see
// the index changed and find it there, not report it missing.
func TestReadAcrossSplit(t *testing.T) {
	b := open(t, t.TempDir())
	fs.SetLeafMax(b, 2)
	ctx := context.Background()
	put := func(k string) {
		if err := putEmpty(b, "t", k); err != nil {
			t.Fatal(err)
		}
	}
	put("a")
	put("z") // the leaf holds a and z: full
	before, _ := b.Path("t", "z")
	// Each hook call splits the leaf holding z with a new key before it:
	// m makes [a] [m z], then n makes [m] [n z].
	next, moves, armed := []string{"m", "n"}, 0, false
	fs.SetAfterIndex(b, func() {
		if armed {
			armed = false
			put(next[moves])
			moves++
		}
	})
	for i, get := range []func() error{
		func() error { _, err := b.Get(ctx, "t", "z"); return err },
		func() error { _, err := b.Stat(ctx, "t", "z"); return err },
	} {
		armed = true
		if err := get(); err != nil {
			t.Fatalf("read %d across a split: %v", i, err)
		}
		if moves != i+1 {
			t.Fatalf("read %d: the hook split %d times, want %d", i, moves, i+1)
		}
	}
	if after, _ := b.Path("t", "z"); after == before {
		t.Fatalf("z is still in %s: no split moved it", before)
	}
}

const helperEnv = "CAIRN_FS_BACKEND_HELPER"

// TestTwoProcesses runs two copies of this test binary against one root:
// both race create-only writes on the same keys (exactly one may win each)
// and if-match increments of one counter (no increment may be lost). The
// processes start together when the test closes their stdin. Leaves hold
// at most 3 objects, so both processes split leaves under each other's
// lock-free reads, and each finds its cached index stale.
func TestTwoProcesses(t *testing.T) {
	root := t.TempDir()
	b := open(t, root)
	fs.SetLeafMax(b, 3)
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
	// After the splits, the listing holds every key once, in order.
	want := []string{"counter"}
	for r := range helperRounds {
		want = append(want, fmt.Sprintf("race-%d", r))
	}
	slices.Sort(want)
	var got []string
	for opts := (backend.ListOptions{Limit: 4}); ; {
		p, err := b.List(ctx, "t", opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			got = append(got, e.Key)
		}
		if !p.More {
			break
		}
		opts.StartAfter = p.Entries[len(p.Entries)-1].Key
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listing after two processes split the leaves: %q, want %q", got, want)
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
	fs.SetLeafMax(b, 3)
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

// TestETagAttr: on Linux a write records the object's ETag on the file, and
// Stat and List report the header's ETag whether or not the record is there
// (a file Corrupt rewrote has none).
func TestETagAttr(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("extended attributes are used on Linux only")
	}
	b := open(t, t.TempDir())
	ctx := context.Background()
	v := backendtest.Version([]byte(`{"a":1}`), 1, 1, false)
	etag, err := b.Put(ctx, "t", "k", v, []byte(`{"a":1}`), backend.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := b.Path("t", "k")
	buf := make([]byte, 80)
	n, err := syscall.Getxattr(p, "user.cairn.etag", buf)
	if err != nil {
		t.Skipf("no user extended attributes here (%v): the header is read instead", err)
	}
	if got := string(buf[:n]); !strings.HasPrefix(got, etag+" ") {
		t.Fatalf("recorded %q, want the ETag %s and the size", got, etag)
	}
	// Without the record, the header gives the same answer.
	if err := syscall.Removexattr(p, "user.cairn.etag"); err != nil {
		t.Fatal(err)
	}
	e, err := b.Stat(ctx, "t", "k")
	if err != nil || e.ETag != etag {
		t.Fatalf("Stat without the record = %+v, %v; want ETag %s", e, err, etag)
	}
	pg, err := b.List(ctx, "t", backend.ListOptions{})
	if err != nil || len(pg.Entries) != 1 || pg.Entries[0] != e {
		t.Fatalf("List without the record = %+v, %v; want %+v", pg, err, e)
	}
	// The header's reader recorded it again.
	if n, err = syscall.Getxattr(p, "user.cairn.etag", buf); err != nil || !strings.HasPrefix(string(buf[:n]), etag+" ") {
		t.Fatalf("after a read of the header the record is %q, %v; want it made again", buf[:n], err)
	}
}

// TestOverwrittenInPlace writes an older object of the key over the file
// in place, as cp onto it or a restore tool does: the inode and its ETag
// attribute stay, the bytes are the older object's. Stat, List and the
// precondition of a write must all see the object Get reads, or a repair
// conditional on what Get saw fails forever.
func TestOverwrittenInPlace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		v1, v2 string
	}{
		{"other size", `{"v":1}`, `{"v":2,"x":1}`},
		{"same size", `{"v":1}`, `{"v":2}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			b := open(t, t.TempDir())
			if _, err := b.Put(ctx, "acme", "k", backendtest.Version([]byte(tc.v1), 1, 1, false), []byte(tc.v1), backend.Precondition{}); err != nil {
				t.Fatal(err)
			}
			p, _ := b.Path("acme", "k")
			old, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			v2 := backendtest.Version([]byte(tc.v2), 2, 2, false)
			if _, err := b.Put(ctx, "acme", "k", v2, []byte(tc.v2), backend.Precondition{}); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, old, 0o600); err != nil { // same inode: truncated and rewritten
				t.Fatal(err)
			}
			// A restore tool sets the copy's own time (cp -p, rsync -t);
			// without it, a write in the same tick of the kernel's clock
			// could leave the time as it was.
			if err := os.Chtimes(p, time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
				t.Fatal(err)
			}
			o, err := b.Get(ctx, "acme", "k")
			if err != nil {
				t.Fatal(err)
			}
			st, err := b.Stat(ctx, "acme", "k")
			if err != nil {
				t.Fatal(err)
			}
			if st.ETag != o.ETag || st.Size != int64(len(old)) {
				t.Errorf("Stat = %s, %d bytes; Get read %s, %d bytes", st.ETag, st.Size, o.ETag, len(old))
			}
			pg, err := b.List(ctx, "acme", backend.ListOptions{})
			if err != nil || len(pg.Entries) != 1 || pg.Entries[0] != st {
				t.Errorf("List = %+v, %v; want %+v", pg, err, st)
			}
			if _, err := b.Put(ctx, "acme", "k", v2, []byte(tc.v2), backend.Precondition{IfMatch: o.ETag}); err != nil {
				t.Errorf("a repair conditional on the ETag Get gave: %v", err)
			}
		})
	}
}

// TestListSkipsForeignEntries puts into a leaf what people and tools
// leave there: an editor's swap file, a copy kept beside an object, a
// directory named like a key. A listing must give the tenant's objects and
// nothing else, not fail (which would fail every scrub and catch-up of the
// tenant), and splits must go on.
func TestListSkipsForeignEntries(t *testing.T) {
	ctx := context.Background()
	b := open(t, t.TempDir())
	fs.SetLeafMax(b, 4)
	var want []string
	for i := range 3 {
		k := fmt.Sprintf("k%d", i)
		if err := putEmpty(b, "acme", k); err != nil {
			t.Fatal(err)
		}
		want = append(want, k)
	}
	p, _ := b.Path("acme", "k1")
	leaf := filepath.Dir(p)
	for _, name := range []string{".k1.swp", "k1.bak", "k2.tmp~"} {
		if err := os.WriteFile(filepath.Join(leaf, name), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(leaf, "kdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	keys := func() []string {
		t.Helper()
		var got []string
		var after string
		for {
			pg, err := b.List(ctx, "acme", backend.ListOptions{StartAfter: after, Limit: 2})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			for _, e := range pg.Entries {
				got = append(got, e.Key)
				after = e.Key
			}
			if !pg.More {
				return got
			}
		}
	}
	if got := keys(); !slices.Equal(got, want) {
		t.Fatalf("listed %q, want %q", got, want)
	}
	for i := 3; i < 12; i++ { // past the leaf's limit: splits
		k := fmt.Sprintf("k%d", i)
		if err := putEmpty(b, "acme", k); err != nil {
			t.Fatal(err)
		}
		want = append(want, k)
	}
	slices.Sort(want)
	if got := keys(); !slices.Equal(got, want) {
		t.Fatalf("after splits listed %q, want %q", got, want)
	}
}

// TestListAcrossSplit splits the leaf a listing is reading after the
// listing checked that the index had not changed and before it read the
// objects' entries: the split unlinks the leaf's upper half, and the
// listing must find those keys in the new leaf, not skip them as deleted.
func TestListAcrossSplit(t *testing.T) {
	b := open(t, t.TempDir())
	fs.SetLeafMax(b, 4)
	ctx := context.Background()
	put := func(k string) {
		if err := putEmpty(b, "t", k); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		put(k) // one leaf, full
	}
	before, _ := b.Path("t", "d")
	armed := true
	fs.SetAfterLeaf(b, func() {
		if armed {
			armed = false
			put("e") // [a b c d e] splits into [a b] [c d e]
		}
	})
	page, err := b.List(ctx, "t", backend.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if armed {
		t.Fatal("the hook did not run")
	}
	if after, _ := b.Path("t", "d"); after == before {
		t.Fatalf("d is still in %s: no split moved it", before)
	}
	var got []string
	for _, e := range page.Entries {
		got = append(got, e.Key)
	}
	// e was written during the listing: either answer is right for it.
	got = slices.DeleteFunc(got, func(k string) bool { return k == "e" })
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(got, want) || page.More {
		t.Fatalf("listing across a split: %v (more %v), want %v", got, page.More, want)
	}
}

// TestSplitWithUnreadableHashedObject splits a leaf while the header of a
// long (hashed-name) key's object cannot be read: a transient I/O error,
// simulated by a directory in the object's place. The split must not move
// the leaf's range away from that object and leave it behind, unreachable:
// once the object reads again, every key is found, whatever the writes in
// between answered.
func TestSplitWithUnreadableHashedObject(t *testing.T) {
	b := open(t, t.TempDir())
	fs.SetLeafMax(b, 3)
	ctx := context.Background()
	long := "z" + strings.Repeat("y", 300) // hashed name, last in key order
	for _, k := range []string{"a", "b", long} {
		if err := putEmpty(b, "t", k); err != nil {
			t.Fatal(err)
		}
	}
	p, err := b.Path("t", long)
	if err != nil {
		t.Fatal(err)
	}
	away := filepath.Join(t.TempDir(), "away")
	if err := os.Rename(p, away); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o755); err != nil { // reading it fails with EISDIR
		t.Fatal(err)
	}
	for _, k := range []string{"c", "d"} {
		_ = putEmpty(b, "t", k) // may fail: the leaf cannot be split now
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away, p); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"e", "f", "g"} {
		if err := putEmpty(b, "t", k); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", long} {
		if _, err := b.Get(ctx, "t", k); err != nil {
			t.Errorf("Get %.10q after the header read again: %v", k, err)
		}
	}
	page, err := b.List(ctx, "t", backend.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(page.Entries); n != 8 || page.Entries[n-1].Key != long {
		t.Fatalf("List: %d entries, want 8 with the long key last", n)
	}
}

// TestDeleteBlobRemovesEmptyDirs: deleting a directory's last blob removes
// the directories it leaves empty (a pruned pack generation's), and no
// directory that still holds a blob.
func TestDeleteBlobRemovesEmptyDirs(t *testing.T) {
	root := t.TempDir()
	b, err := fs.Open("b", root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"pack/acme/g1/part-1", "pack/acme/g1/part-2", "pack/acme/g2/part-1"} {
		if _, err := b.PutBlob(ctx, name, []byte("x"), backend.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"pack/acme/g1/part-1", "pack/acme/g1/part-2"} {
		if err := b.DeleteBlob(ctx, name, backend.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(root, backend.BlobDir, "pack", "acme")
	if _, err := os.Stat(filepath.Join(dir, "g1")); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("g1's directory after its last blob was deleted: %v, want it gone", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "g2", "part-1")); err != nil {
		t.Errorf("g2's blob: %v", err)
	}
	if err := b.DeleteBlob(ctx, "pack/acme/g2/part-1", backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, backend.BlobDir, "pack")); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("pack's directory after every blob under it was deleted: %v, want it gone", err)
	}
	if _, err := os.Stat(filepath.Join(root, backend.BlobDir)); err != nil {
		t.Errorf("the blobs' root: %v, want it kept", err)
	}
	page, err := b.ListBlobs(ctx, "pack/", "", 0)
	if err != nil || len(page.Entries) != 0 {
		t.Errorf("ListBlobs after every blob was deleted: %+v, %v", page, err)
	}
}
