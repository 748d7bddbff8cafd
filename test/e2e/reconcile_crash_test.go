package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/fs"
)

// TestReconcileRoundCrashResumes kills the node with SIGKILL in the middle
// of a reconciliation round and checks that the restarted node resumes the
// round where it was checkpointed, redoing at most one checkpoint interval,
// and that the backend ends up with every document at the node's version.
//
// The node holds n documents, all replicated to an fs backend; then a tenth
// of them are deleted from the backend behind the node's back (a partly
// wiped backend), so the round that runs at the next start must re-upload
// them, spread over the whole key range. The test polls the admin endpoint
// and kills the node once the round's checkpointed cursor is between 30%
// and 60% of the keys. The restarted node's startup round must report
// ResumedAfter at or after that cursor, at a checkpoint (the engine saves
// one every 1000 keys), and must scan exactly the keys after it: so the
// keys handled twice are those between the last checkpoint and the kill,
// fewer than one interval. n is 4,000 in the default run (replicating
// them first, every upload fsynced, takes most of its time) and 100,000
// with CAIRN_LONG=1.
func TestReconcileRoundCrashResumes(t *testing.T) {
	n := 4000 // with a checkpoint every 1000 keys, the kill comes at 2000
	if os.Getenv("CAIRN_LONG") == "1" {
		n = 100_000
	}
	const every = 1000 // reconcile.Config.CheckpointEvery's default, which serve uses
	dir := t.TempDir()
	data, beDir := filepath.Join(dir, "data"), filepath.Join(dir, "backend")
	if err := os.Mkdir(beDir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"--backend", "b=fs:" + beDir, "--reconcile-interval", "0"}
	key := func(i int) string { return fmt.Sprintf("k%06d", i) }
	body := func(i int) string { return fmt.Sprintf(`{"k":"%s","i":%d}`, key(i), i) }

	// Load n documents and replicate them all (the uploader sends most; a
	// round, after it, finds the rest).
	p := startNode(t, data, args...)
	var nd strings.Builder
	for i := range n {
		nd.WriteString(body(i) + "\n")
	}
	file := filepath.Join(dir, "in.ndjson")
	if err := os.WriteFile(file, []byte(nd.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ingestFile(t, p, "--key-field", "k", file)
	t.Logf("ingested %d documents in %v", n, time.Since(start).Round(time.Millisecond))
	admin := "http://" + adminAddr(t, p)
	if out := reconcileCLI(t, admin, "run", "--wait", "--tenant", "demo"); strings.Contains(out, "error") {
		t.Fatalf("first round: %s", out)
	}
	t.Logf("replicated in %v", time.Since(start).Round(time.Millisecond))
	etags := nodeETags(t, p)
	if len(etags) != n {
		t.Fatalf("the node lists %d documents, want %d", len(etags), n)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.stderr)
	}

	be, err := fs.Open("b", beDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < n; i += 10 {
		if err := be.Delete(ctx, "demo", key(i), backend.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	// Digests cannot see objects removed behind the nodes' backs (the
	// scrub finds those): without the tenant's digests the round lists
	// every key, which is the round this test crashes.
	if err := os.RemoveAll(filepath.Join(beDir, backend.BlobDir, "digest")); err != nil {
		t.Fatal(err)
	}

	// The start triggers a pass; kill the node when its round is 30–60% in.
	p = startNode(t, data, args...)
	admin = "http://" + adminAddr(t, p)
	var seen int // the position (keys handled) of the cursor seen before the kill
	var killed time.Time
	deadline := time.Now().Add(5 * time.Minute)
	for seen == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the round's cursor never passed 30%% of %d keys within 5 minutes", n)
		}
		tp := tenantProgress(t, admin)
		if tp == nil || !tp.Running || tp.Cursor == "" {
			if tp != nil && tp.Last != nil {
				t.Fatalf("the round finished before the test saw it 30%% in: %+v", tp.Last)
			}
			time.Sleep(2 * time.Millisecond) // polling across processes
			continue
		}
		pos := position(t, tp.Cursor)
		if pos < n*3/10 {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		p.kill()
		killed = time.Now()
		if pos > n*6/10 {
			t.Fatalf("polled too slowly: the cursor was at %d of %d when first seen past 30%%", pos, n)
		}
		seen = pos
	}
	t.Logf("killed the node with the round's cursor at %d of %d keys", seen, n)

	// The restarted node's startup round resumes.
	p = startNode(t, data, args...)
	admin = "http://" + adminAddr(t, p)
	var last *RoundResultJSON
	for last == nil {
		if time.Now().After(deadline) {
			t.Fatal("the resumed round did not finish within the test's 5 minutes")
		}
		if tp := tenantProgress(t, admin); tp != nil && !tp.Running && tp.Last != nil {
			last = tp.Last
			if tp.LastError != "" {
				t.Fatalf("the resumed round failed: %s", tp.LastError)
			}
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("resumed round: %+v (%v after the kill)", *last, time.Since(killed).Round(time.Millisecond))
	if last.ResumedAfter == "" {
		t.Fatal("the round after the crash started from the first key: the checkpoint was lost")
	}
	resumed := position(t, last.ResumedAfter)
	switch {
	case resumed < seen:
		t.Fatalf("resumed after %d keys, before the checkpoint seen at %d: progress was lost", resumed, seen)
	case resumed%every != 0:
		t.Fatalf("resumed after %d keys, not at a checkpoint (every %d keys)", resumed, every)
	case last.Scanned != n-resumed:
		t.Fatalf("the resumed round scanned %d keys, want %d (the keys after its cursor)", last.Scanned, n-resumed)
	}

	// Every document is on the backend at the node's version.
	for i := range n {
		o, err := be.Get(ctx, "demo", key(i))
		if err != nil {
			t.Fatalf("backend Get %s: %v", key(i), err)
		}
		if got, want := o.Version.ETag(), etags[key(i)]; got != want || string(o.Body) != body(i) {
			t.Fatalf("backend holds %s at %s %q, the node at %s %q", key(i), got, o.Body, want, body(i))
		}
	}
	var listed int
	for opts := (backend.ListOptions{}); ; {
		pg, err := be.List(ctx, "demo", opts)
		if err != nil {
			t.Fatal(err)
		}
		listed += len(pg.Entries)
		if !pg.More {
			break
		}
		opts.StartAfter = pg.Entries[len(pg.Entries)-1].Key
	}
	if listed != n {
		t.Fatalf("the backend lists %d documents, want %d", listed, n)
	}
	if err := p.stop(); err != nil {
		t.Errorf("SIGTERM: %v\n%s", err, p.stderr)
	}
}

// position is the number of keys up to and including cursor "k%06d".
func position(t *testing.T, cursor string) int {
	t.Helper()
	i, err := strconv.Atoi(strings.TrimPrefix(cursor, "k"))
	if err != nil {
		t.Fatalf("cursor %q: %v", cursor, err)
	}
	return i + 1
}

// RoundResultJSON is the part of api.RoundResult the test reads.
type RoundResultJSON struct {
	ResumedAfter string         `json:"resumed_after"`
	Scanned      int            `json:"scanned"`
	Actions      map[string]int `json:"actions"`
}

type tenantProgressJSON struct {
	Running   bool             `json:"running"`
	Cursor    string           `json:"cursor"`
	Last      *RoundResultJSON `json:"last"`
	LastError string           `json:"last_error"`
}

// tenantProgress is the demo tenant's progress on the only backend, or nil
// before the engine worked on it.
func tenantProgress(t *testing.T, admin string) *tenantProgressJSON {
	t.Helper()
	resp, err := httpClient.Get(admin + "/v1/admin/reconcile")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Backends []struct {
			Tenants []struct {
				Tenant string `json:"tenant"`
				tenantProgressJSON
			} `json:"tenants"`
		} `json:"backends"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	for _, b := range st.Backends {
		for _, tp := range b.Tenants {
			if tp.Tenant == "demo" {
				return &tp.tenantProgressJSON
			}
		}
	}
	return nil
}

// nodeETags lists the demo tenant through the API: key → ETag (quoted).
func nodeETags(t *testing.T, p *proc) map[string]string {
	t.Helper()
	out := map[string]string{}
	after := ""
	for {
		req, err := http.NewRequest(http.MethodGet, p.URL+"/v1/tenants/demo/docs?limit=1000&after="+url.QueryEscape(after), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+p.Token)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Items []struct{ Key, ETag string }
			Next  string
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("list after %q: %v %s", after, err, resp.Status)
		}
		for _, it := range page.Items {
			out[it.Key] = it.ETag
		}
		if page.Next == "" {
			return out
		}
		after = page.Next
	}
}

// ingestFile runs 'cairn ingest ARGS…' against p and fails the test unless
// it exits 0.
func ingestFile(t *testing.T, p *proc, args ...string) {
	t.Helper()
	cmd := exec.Command(cairnBin, append([]string{"ingest"}, args...)...)
	cmd.Env = append(os.Environ(), "CAIRN_URL="+p.URL, "CAIRN_TOKEN="+p.Token, "CAIRN_TENANT=demo")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cairn ingest %v: %v\n%s", args, err, out)
	}
}
