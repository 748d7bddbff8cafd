package node

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"log/slog"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
)

// TestIdentityClaims: two nodes from copies of one data directory, sharing
// a backend, are found out. A copy taken while the node runs starts (its
// directory knows the running process's claim) and claims the identity;
// the original's next check raises the alarm and claims it back, and so
// does the copy's. An old backup of a directory, started after the node
// ran again, is refused at start. A restart on the same directory is no
// conflict.
func TestIdentityClaims(t *testing.T) {
	spec, err := ParseBackendSpec("shared=fs:" + t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rarely := func(c *Config) { c.Replication.ClaimCheck = time.Hour } // checks run by hand below
	readyz := func(n replNode) string {
		t.Helper()
		res, err := http.Get("http://" + n.Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct{ Status string }
		json.NewDecoder(res.Body).Decode(&body)
		return res.Status + " " + body.Status
	}

	refused := func(dir string) {
		t.Helper()
		cfg := testConfig(t)
		cfg.DataDir, cfg.Replication = dir, Replication{Backends: []BackendSpec{spec}}
		n, err := Start(ctx, cfg)
		if err == nil {
			n.Shutdown(ctx)
			t.Fatalf("a node started on %s", dir)
		}
		if !strings.Contains(err.Error(), "copy or an old backup") || !strings.Contains(err.Error(), runbookIdentity) {
			t.Fatalf("the refusal does not say why: %v", err)
		}
	}

	a := startReplNodeWith(t, rarely, spec)
	if code, _ := a.do(t, "PUT", "k", `{"v":1}`); code != 201 {
		t.Fatalf("put: %d", code)
	}
	// A completed round is kept in the checkpoint, so that the restarts
	// below are not catching up (and so not ready) until their first round.
	a.run(t, "")
	dir := a.cfg.DataDir
	a.Shutdown(ctx)
	backup, clone := t.TempDir(), t.TempDir()
	for _, d := range []string{backup, clone} {
		if err := os.CopyFS(d, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
	}

	// A restart on the same directory is no conflict.
	a = startReplNodeWith(t, func(c *Config) { rarely(c); c.DataDir = dir }, spec)
	a.repl.claims.check(ctx)
	if got := readyz(a); got != "200 OK ready" {
		t.Fatalf("a restarted on its own directory: %s", got)
	}

	// A copy taken while a runs holds a's claims as they are now.
	claims, err := os.ReadFile(filepath.Join(dir, claimFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(clone, claimFile), claims, 0o600); err != nil {
		t.Fatal(err)
	}
	b := startReplNodeWith(t, func(c *Config) { rarely(c); c.DataDir = clone }, spec)
	if b.store.Identity() != a.store.Identity() {
		t.Fatal("the copy has another identity")
	}
	a.repl.claims.check(ctx)
	if got := readyz(a); got != "503 Service Unavailable identity_conflict" {
		t.Fatalf("a after the copy claimed: %s", got)
	}
	if v := (&healthNode{Node: a.Node}).metric(t, "cairn_identity_conflict"); v != 1 {
		t.Errorf("cairn_identity_conflict = %v on a, want 1", v)
	}
	b.repl.claims.check(ctx)
	if got := readyz(b); got != "503 Service Unavailable identity_conflict" {
		t.Fatalf("the copy after a claimed back: %s", got)
	}
	b.Shutdown(ctx)
	a.Shutdown(ctx)

	// Whichever of the two is restarted first starts and takes the
	// identity back (each recorded the other's claim), whoever claimed
	// last; the other is then refused.
	a = startReplNodeWith(t, func(c *Config) { rarely(c); c.DataDir = dir }, spec)
	a.repl.claims.check(ctx)
	if got := readyz(a); got != "200 OK ready" {
		t.Fatalf("a restarted first: %s", got)
	}
	a.Shutdown(ctx)
	refused(clone)

	// An old backup of the directory, from before a's last starts.
	refused(backup)
}

// TestFailedStartWithdrawsClaim: a copy of a running node's directory
// whose start fails after it claimed the identity (its port is taken)
// puts the node's claim back, so the node raises no alarm.
func TestFailedStartWithdrawsClaim(t *testing.T) {
	spec, err := ParseBackendSpec("shared=fs:" + t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rarely := func(c *Config) { c.Replication.ClaimCheck = time.Hour } // checks run by hand below
	a := startReplNodeWith(t, rarely, spec)
	a.run(t, "")
	dir := a.cfg.DataDir
	a.Shutdown(ctx)
	clone := t.TempDir()
	if err := os.CopyFS(clone, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	a = startReplNodeWith(t, func(c *Config) { rarely(c); c.DataDir = dir }, spec)
	claims, err := os.ReadFile(filepath.Join(dir, claimFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(clone, claimFile), claims, 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t)
	cfg.DataDir, cfg.Listen = clone, a.Addr()
	cfg.Replication = Replication{Backends: []BackendSpec{spec}, ClaimCheck: time.Hour}
	if n, err := Start(ctx, cfg); err == nil {
		n.Shutdown(ctx)
		t.Fatal("the copy started on a port in use")
	}
	a.repl.claims.check(ctx)
	if a.identityConflict() {
		t.Error("a copy whose start failed left its claim: the node it was copied from raised the alarm")
	}
}

// TestDuplicateNodeIDs: two nodes started with one --node-id from
// different data directories (a copied configuration) publish one change
// feed, each overwriting the other's; both raise the alarm once each has
// checked. A node rebuilt on an empty directory with the id of a node
// that is gone is no conflict, nor is a failed start of a second one.
func TestDuplicateNodeIDs(t *testing.T) {
	spec, err := ParseBackendSpec("shared=fs:" + t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n1 := func(c *Config) { c.NodeID, c.Replication.ClaimCheck = "n1", time.Hour } // checks run by hand below

	a := startReplNodeWith(t, n1, spec)
	if code, _ := a.do(t, "PUT", "k", `{"v":1}`); code != 201 {
		t.Fatalf("put: %d", code)
	}
	a.run(t, "")
	a.Shutdown(ctx)

	// a's disk is lost: c takes its place on an empty directory.
	c := startReplNodeWith(t, n1, spec)
	if c.store.Identity().Incarnation == a.store.Identity().Incarnation {
		t.Fatal("the rebuilt node has the old incarnation")
	}
	c.repl.claims.check(ctx)
	if c.identityConflict() {
		t.Fatal("a node rebuilt with the id of a node that is gone raised the alarm")
	}

	// A second node with the id whose start fails (its port is taken)
	// takes its claim back.
	cfg := testConfig(t)
	cfg.NodeID, cfg.Listen = "n1", c.Addr()
	cfg.Replication = Replication{Backends: []BackendSpec{spec}, ClaimCheck: time.Hour}
	if n, err := Start(ctx, cfg); err == nil {
		n.Shutdown(ctx)
		t.Fatal("a node started on a port in use")
	}
	// It never claimed the node id: the running node's checks cannot
	// have met its claim at any moment (a claim withdrawn at the end of
	// the failed start could be).
	nb := c.repl.claims.blobs[0]
	if held, found, err := c.repl.claims.read(ctx, nb, nodeClaimName("n1")); err != nil || !found || held.Run != c.repl.claims.mine.Run {
		t.Fatalf("the node id's claim after a failed start: %+v %v %v; want the running node's", held, found, err)
	}
	c.repl.claims.check(ctx)
	if c.identityConflict() {
		t.Fatal("a node id claimed by a start that failed raised the alarm")
	}

	// A second node with the id that starts.
	b := startReplNodeWith(t, n1, spec)
	c.repl.claims.check(ctx)
	if !c.identityConflict() {
		t.Fatal("a second node with its node id started: no alarm on the first")
	}
	if v := (&healthNode{Node: c.Node}).metric(t, "cairn_identity_conflict"); v != 1 {
		t.Errorf("cairn_identity_conflict = %v, want 1", v)
	}
	b.repl.claims.check(ctx)
	if !b.identityConflict() {
		t.Fatal("the second node with the node id raised no alarm once the first claimed back")
	}
}

// TestClaimDamageIsNoClaim: a claim damaged in the read (a flipped bit, a
// cut) is not taken for another run's.
func TestClaimDamageIsNoClaim(t *testing.T) {
	b := encodeClaim(claim{NodeID: "n", Incarnation: "00000000000000ab", Run: "0123456789abcdef0123456789abcdef", Host: "h", PID: 7, Started: "2026-12-06T00:00:00Z"})
	if c, ok := decodeClaim(b); !ok || c.Run != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("the claim as written: %+v, %v", c, ok)
	}
	for i := range b {
		for bit := range 8 {
			d := bytes.Clone(b)
			d[i] ^= 1 << bit
			if c, ok := decodeClaim(d); ok {
				t.Fatalf("bit %d of byte %d flipped: read as %+v", bit, i, c)
			}
		}
		if _, ok := decodeClaim(b[:i]); ok {
			t.Fatalf("cut at %d: read as a claim", i)
		}
	}
}

// flakyBlobs fails its first reads and writes of blobs as told, then is
// the backend it wraps.
type flakyBlobs struct {
	backend.Blobs
	failGets, failPuts int
}

func (f *flakyBlobs) GetBlob(ctx context.Context, name string) ([]byte, string, error) {
	if f.failGets > 0 {
		f.failGets--
		return nil, "", fault.New(fault.Transient, fault.Context{}, "503")
	}
	return f.Blobs.GetBlob(ctx, name)
}

func (f *flakyBlobs) PutBlob(ctx context.Context, name string, data []byte, pre backend.Precondition) (string, error) {
	if f.failPuts > 0 {
		f.failPuts--
		return "", fault.New(fault.Transient, fault.Context{}, "503")
	}
	return f.Blobs.PutBlob(ctx, name, data, pre)
}

// TestClaimsNoFalseAlarm: a node's own claims never raise the alarm or
// refuse its start: after a claim that could not be read or written at
// start; after many runs that reached no backend; and after a backend was
// left out of the node's settings for more runs than it keeps ids of.
func TestClaimsNoFalseAlarm(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	id := store.Identity{NodeID: "n", Incarnation: 1}
	a, b := mem.New("a"), mem.New("b")
	run := func(blobs ...namedBlobs) *claims {
		t.Helper()
		c, err := newClaims(dir, id, time.Now(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		c.blobs = blobs
		if err := c.start(ctx); err != nil {
			t.Fatalf("start: %v", err)
		}
		c.check(ctx)
		c.check(ctx)
		if c.conflict.Load() {
			t.Fatal("the alarm was raised")
		}
		return c
	}
	run(namedBlobs{"a", a}, namedBlobs{"b", b})
	// A claim that could not be read, or written, at start.
	run(namedBlobs{"a", &flakyBlobs{Blobs: a, failGets: 1}})
	run(namedBlobs{"a", &flakyBlobs{Blobs: a, failPuts: 1}})
	// Runs that reached no backend.
	for range 2 * claimRunsKept {
		run(namedBlobs{"a", downBlobs{}})
	}
	// Backend b left out for more runs than the directory keeps ids of.
	for range claimRunsKept + 1 {
		run(namedBlobs{"a", a})
	}
	run(namedBlobs{"a", a}, namedBlobs{"b", b})
}

// downBlobs is a backend that answers nothing.
type downBlobs struct{ backend.Blobs }

func (downBlobs) GetBlob(context.Context, string) ([]byte, string, error) {
	return nil, "", fault.New(fault.Transient, fault.Context{}, "down")
}
