package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/api"
)

// TestPackRestoreResumesAfterKill: node A takes n documents on an fs
// backend and, after its round, writes a catch-up pack of small parts.
// Node B starts on an empty data directory with the failpoint
// reconcile.restore.part armed to SIGKILL it once its third part is
// applied and checkpointed. Restarted, B resumes the restore at the fourth
// part (its log names the parts it applied: all but the first three),
// becomes ready, serves every document with A's ETag, and has read no
// document object from the backend: the pack brought them all.
func TestPackRestoreResumesAfterKill(t *testing.T) {
	const n = 3000
	dir := t.TempDir()
	beDir := filepath.Join(dir, "backend")
	if err := os.Mkdir(beDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The background scrub is off: it reads document objects at its own
	// pace, and the test counts the document reads the restore makes.
	common := []string{"--backend", "b=fs:" + beDir, "--reconcile-interval", "0", "--scrub-rate", "0"}
	a := startNode(t, filepath.Join(dir, "a"), append(common, "--pack-min-docs", "1", "--pack-part-bytes", "16KiB")...)
	var nd strings.Builder
	for i := range n {
		fmt.Fprintf(&nd, `{"k":"k%05d","i":%d,"pad":"%s"}`+"\n", i, i, strings.Repeat("x", 40))
	}
	file := filepath.Join(dir, "in.ndjson")
	if err := os.WriteFile(file, []byte(nd.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ingestFile(t, a, "--key-field", "k", file)
	reconcileCLI(t, "http://"+adminAddr(t, a), "run", "--wait", "--tenant", "demo")
	want := nodeETags(t, a)
	if len(want) != n {
		t.Fatalf("A lists %d documents, want %d", len(want), n)
	}
	parts := waitForPack(t, filepath.Join(beDir, "_cairn", "pack", "demo"))
	if parts < 5 {
		t.Fatalf("A's pack has %d parts; the test wants at least 5", parts)
	}
	if err := a.stop(); err != nil {
		t.Fatalf("stopping A: %v\n%s", err, a.stderr)
	}

	dataB := filepath.Join(dir, "b")
	b := startNode(t, dataB, append(common, "--enable-chaos", "--chaos-seed", "1",
		"--failpoints", "reconcile.restore.part=kill@3")...)
	if err := b.wait(2 * time.Minute); !killedBySIGKILL(err) {
		t.Fatalf("B exited with %v, want SIGKILL at the failpoint\n%s", err, b.stderr)
	}
	b = startNode(t, dataB, append(common, "--log-level", "info")...)
	admin := "http://" + adminAddr(t, b)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, _ := httpGet(t, admin+"/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B not ready 2 minutes after its restart\n%s", b.stderr)
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
	restored := restoreLog(t, b.stderr.String())
	if restored.Parts != parts-3 || restored.Applied == 0 || restored.Applied >= n {
		t.Fatalf("the restart's restore: %+v; want the %d parts after the first 3 of %d", restored, parts-3, parts)
	}
	got := nodeETags(t, b)
	if len(got) != n {
		t.Fatalf("B lists %d documents, want %d", len(got), n)
	}
	for k, etag := range want {
		if got[k] != etag {
			t.Fatalf("%s: B has ETag %s, A had %s", k, got[k], etag)
		}
	}
	if gets := metricSum(t, admin, `cairn_backend_operations_total{backend="b",op="backend.get"`); gets != 0 {
		t.Errorf("B read %v document objects from the backend; the pack should have brought them all", gets)
	}
	if err := b.stop(); err != nil {
		t.Errorf("stopping B: %v\n%s", err, b.stderr)
	}
}

// TestPackRestoreEndsWithDigests: node A takes n documents on an fs
// backend, writes a catch-up pack, then takes a few more (after the pack,
// in the last key range) and stays up. Node B starts on an empty data
// directory: it restores the pack, replays A's feed after the cursor the
// manifest records, and ends catching up with a digest round, which scans
// at most the one key range that changed rather than the whole tenant;
// then it serves every document of A with A's ETag.
func TestPackRestoreEndsWithDigests(t *testing.T) {
	const n, later = 4000, 10
	dir := t.TempDir()
	beDir := filepath.Join(dir, "backend")
	if err := os.Mkdir(beDir, 0o755); err != nil {
		t.Fatal(err)
	}
	common := []string{"--backend", "b=fs:" + beDir, "--reconcile-interval", "0", "--scrub-rate", "0"}
	a := startNode(t, filepath.Join(dir, "a"), append(common, "--pack-min-docs", "1", "--pack-part-bytes", "64KiB")...)
	writeDocs := func(from, to int) {
		var nd strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&nd, `{"k":"k%05d","i":%d}`+"\n", i, i)
		}
		file := filepath.Join(dir, fmt.Sprintf("in-%d.ndjson", from))
		if err := os.WriteFile(file, []byte(nd.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		ingestFile(t, a, "--key-field", "k", file)
	}
	writeDocs(0, n)
	// Rounds until one finds the tenant in sync by its digests alone: the
	// first lays the tenant out, and marks the ranges where the uploads
	// raced its listing for every node to list once; a later one, listing
	// them with nothing racing, corrects them. (Without that, B's digest
	// round would list those ranges too, by design.)
	for i := 0; ; i++ {
		resp, err := httpClient.Post("http://"+adminAddr(t, a)+"/v1/admin/reconcile/run?wait=1&tenant=demo", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var run api.ReconcileRun
		if err := json.Unmarshal(out, &run); err != nil {
			t.Fatalf("reconcile run: %v\n%s", err, out)
		}
		if len(run.Rounds) == 1 && run.Rounds[0].Scanned == 0 && run.Rounds[0].Error == "" {
			break
		}
		if i == 20 {
			t.Fatalf("A's rounds never found the tenant in sync by its digests: %s", out)
		}
	}
	waitForPack(t, filepath.Join(beDir, "_cairn", "pack", "demo"))
	writeDocs(n, n+later) // after the pack: the feed carries them
	// B starts once A has uploaded them and published their feed object,
	// so that B's replay, not its round, brings them.
	for deadline := time.Now().Add(time.Minute); ; {
		_, body := httpGet(t, "http://"+adminAddr(t, a)+"/v1/admin/reconcile")
		var st api.ReconcileStatus
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("A's reconcile status: %v\n%s", err, body)
		}
		if len(st.Backends) == 1 && st.Backends[0].LagSeconds == 0 && len(st.Backends[0].Tenants) == 1 &&
			st.Backends[0].Tenants[0].Feed != nil && st.Backends[0].Tenants[0].Feed.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A did not upload and publish its later writes within a minute:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
	want := nodeETags(t, a)
	if len(want) != n+later {
		t.Fatalf("A lists %d documents, want %d", len(want), n+later)
	}

	b := startNode(t, filepath.Join(dir, "b"), append(common, "--log-level", "info")...)
	admin := "http://" + adminAddr(t, b)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if code, _ := httpGet(t, admin+"/readyz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B not ready within 2 minutes\n%s", b.stderr)
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
	if r := restoreLog(t, b.stderr.String()); r.Applied != n || !r.Replayed {
		t.Fatalf("B's restore: %+v; want %d documents and the feeds replayed", r, n)
	}
	// A round listing every object scans every key; a digest round only
	// the keys of the ranges whose digests differ (none, or the last range
	// if A's digest delta for its later writes was not published yet).
	_, body := httpGet(t, admin+"/v1/admin/reconcile")
	var status api.ReconcileStatus
	if err := json.Unmarshal([]byte(body), &status); err != nil {
		t.Fatalf("reconcile status: %v\n%s", err, body)
	}
	scanned := -1
	for _, bs := range status.Backends {
		for _, tp := range bs.Tenants {
			if tp.Tenant == "demo" && tp.Last != nil {
				scanned = tp.Last.Scanned
			}
		}
	}
	if scanned < 0 || scanned >= n/2 {
		t.Errorf("B's round that ended catching up scanned %d keys; a digest round scans at most a changed range, not %d\n%s", scanned, n+later, body)
	}
	for {
		got := nodeETags(t, b)
		same := len(got) == len(want)
		for k, etag := range want {
			same = same && got[k] == etag
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B serves %d documents (want %d with A's ETags) 2 minutes after its start", len(got), len(want))
		}
		time.Sleep(50 * time.Millisecond) // polling another process
	}
	for _, p := range []*proc{b, a} {
		if err := p.stop(); err != nil {
			t.Errorf("stopping a node: %v\n%s", err, p.stderr)
		}
	}
}

// restoreLine is the log record of a finished restore.
type restoreLine struct {
	Msg        string `json:"msg"`
	Generation string `json:"generation"`
	Parts      int    `json:"parts"`
	Applied    int    `json:"applied"`
	Skipped    int    `json:"skipped"`
	Replayed   bool   `json:"feeds_replayed"`
}

func restoreLog(t *testing.T, stderr string) restoreLine {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l restoreLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "reconcile: restored from a catch-up pack" {
			return l
		}
	}
	t.Fatalf("no restore in the log:\n%s", stderr)
	return restoreLine{}
}

// waitForPack waits for a complete pack generation under dir (an fs
// backend's pack directory of a tenant) and returns its number of parts.
func waitForPack(t *testing.T, dir string) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ms, _ := filepath.Glob(filepath.Join(dir, "*", "manifest"))
		if len(ms) > 0 {
			ps, err := filepath.Glob(filepath.Join(filepath.Dir(ms[0]), "part-*"))
			if err != nil {
				t.Fatal(err)
			}
			return len(ps)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no complete pack under %s within a minute", dir)
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
}

// metricSum adds the values of the admin /metrics series whose text starts
// with prefix.
func metricSum(t *testing.T, admin, prefix string) float64 {
	t.Helper()
	_, body := httpGet(t, admin+"/metrics")
	sum := 0.0
	line := regexp.MustCompile(`^(\S+) (\S+)$`)
	for _, l := range strings.Split(body, "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil || !strings.HasPrefix(m[1], prefix) {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", l, err)
		}
		sum += v
	}
	return sum
}
