package scale

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/s3/s3test"
	"github.com/cairnstore/cairn/internal/reconcile"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/store"
)

// TestCatchUpScale measures an empty node catching up with one tenant of n
// documents on an S3 server (versitygw on loopback): today's way (a round
// that reads every object), and from a catch-up pack (the restore, then
// the round that ends catching up), each in its own child process with
// its peak RSS: the catch-up from a pack is measured end to end, from the
// node's start until the tenant is caught up. The default run is short (2,000 documents)
// and checks the outcomes; CAIRN_LONG=1 runs 100,000, and
// CAIRN_CATCHUP_KEYS=N any size (CAIRN_CATCHUP_BASELINE=0 skips today's
// way, which reads at a few hundred objects a second);
// CAIRN_CATCHUP_BACKEND=fs uses an fs backend instead of versitygw.
// scripts/bench-catchup.sh runs it.
func TestCatchUpScale(t *testing.T) {
	n := 2000
	if os.Getenv("CAIRN_LONG") == "1" {
		n = 100_000
	}
	if v := os.Getenv("CAIRN_CATCHUP_KEYS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("CAIRN_CATCHUP_KEYS=%q: want a count", v)
		}
	}
	dir := t.TempDir()
	var be string
	if os.Getenv("CAIRN_CATCHUP_BACKEND") == "fs" { // sizes versitygw takes too long to fill
		be = "fs:" + filepath.Join(dir, "fs")
	} else {
		be = "s3:" + s3test.StartIn(t, "scale", os.Getenv("CAIRN_SCALE_GW_DIR")).Endpoint
	}
	origin := filepath.Join(dir, "origin")
	report := func(what string, r result) {
		t.Logf("%-40s docs %8d  %8.2f s  %9.0f docs/s (CPU %7.2f s)  peak RSS %6.1f MiB  %v",
			what, n, r.Seconds, float64(n)/r.Seconds, r.CPU, mib(r.HWMKiB), r.Actions)
	}
	r := run(t, job{Mode: "fill-upload", Store: origin, Backend: be, From: 0, To: n})
	report("fill + upload (origin node)", r)

	if os.Getenv("CAIRN_CATCHUP_BASELINE") != "0" {
		r = run(t, job{Mode: "round", Store: filepath.Join(dir, "baseline"), Backend: be})
		report("catch-up by a round (no pack)", r)
		if r.Actions["download"] != n {
			t.Fatalf("the round of an empty node: %v, want %d downloads", r.Actions, n)
		}
	}
	r = run(t, job{Mode: "pack", Store: origin, Backend: be})
	report("write a pack (origin node)", r)
	if r.Scanned != n {
		t.Fatalf("the pack holds %d documents, want %d", r.Scanned, n)
	}
	// The catch-up as a node does it, in one process: the restore (with
	// the replay of the feeds after the pack), then the round that ends
	// catching up, which compares digests when the replay reached back.
	empty := filepath.Join(dir, "restored")
	r = run(t, job{Mode: "catchup", Store: empty, Backend: be})
	restore := float64(r.Actions["restore_ms"]) / 1000
	t.Logf("%-40s docs %8d  %8.2f s  %9.0f docs/s", "restore (within the catch-up)", n, restore, float64(n)/restore)
	t.Logf("%-40s docs %8d  %8.2f s  listed %d, segments skipped %d, applied %d",
		"round that ends catching up", n, r.Seconds-restore, r.Listed, r.Skipped, r.Applied)
	report("catch-up from a pack, end to end", r)
	if r.Actions["restored"] != n || r.Actions["replayed"] != 1 {
		t.Fatalf("the restore: %v; want %d documents applied and the feeds replayed", r.Actions, n)
	}
	if r.Applied != 0 || r.Listed > n/100 {
		t.Fatalf("the round after the restore: listed %d, applied %d %v; want nothing applied, under 1%% listed", r.Listed, r.Applied, r.Actions)
	}
}

// catchupModes are the child jobs of TestCatchUpScale (see job.run).
var catchupModes = map[string]func(context.Context, job, backend.Backend) (result, error){
	"fill-upload": fillUpload,
	"pack":        writePack,
	"catchup":     catchUp,
}

func openEngine(j job, be backend.Backend, dur store.Durability) (*store.Store, *reconcile.Engine, error) {
	s, err := store.Open(j.Store, store.Options{NodeID: "scale", Durability: dur})
	if err != nil {
		return nil, nil, err
	}
	pol, err := resilience.New(resilience.Config{Backend: be.Name()})
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	// Digests and the feed as a node runs them by default: the origin's
	// packs record its feed cursors, and the restored node's catch-up
	// round compares digests.
	cfg := reconcile.Config{Store: s, Backend: be, Policy: pol, Tenants: []string{tenant}, Digests: true,
		Feed: reconcile.FeedConfig{NodeID: "origin"}}
	if j.Mode == "catchup" {
		cfg.Feed.NodeID = "restored"
	}
	if j.Mode == "fill-upload" { // not measured: as fast as the server takes it
		fillConcurrency(&cfg)
	}
	e, err := reconcile.New(cfg)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, e, nil
}

// fillUpload writes [From, To) to the store and uploads them (the
// uploader, with its concurrency), which records each document's base:
// the pack then holds every document without a round listing the tenant.
func fillUpload(ctx context.Context, j job, be backend.Backend) (result, error) {
	s, e, err := openEngine(j, be, store.Buffered)
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	defer e.Close()
	// The tenant grows as a node's does (job.fillUpload): laid out at a
	// seventh of its keys, then the rest uploaded with their digest
	// deltas, so the digest round that ends a catch-up has digests to
	// compare, without a listing of the whole tenant.
	j.Grow = 7
	parts := map[string]float64{}
	if err := j.fillUpload(ctx, s, e, parts); err != nil {
		return result{}, err
	}
	// A round, as the node's next one: it publishes the engine's digest
	// deltas, and lists only the ranges they leave different.
	st, err := e.Round(ctx, tenant)
	return result{Scanned: int(parts["docs0"] + parts["docs"]), Applied: st.Applied(), Actions: map[string]int{"listed": st.Listed}}, err
}

func writePack(ctx context.Context, j job, be backend.Backend) (result, error) {
	s, e, err := openEngine(j, be, store.Sync)
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	defer e.Close()
	m, err := e.WritePack(ctx, tenant, true)
	if err != nil {
		return result{}, err
	}
	return result{Scanned: int(m.Docs), Actions: map[string]int{"parts": len(m.Parts), "MiB": int(m.Bytes >> 20)}}, nil
}

// catchUp restores an empty node from the pack, replaying the feeds
// after it, then runs the round that ends its catching up.
func catchUp(ctx context.Context, j job, be backend.Backend) (result, error) {
	s, e, err := openEngine(j, be, store.Sync)
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	defer e.Close()
	start := time.Now()
	if _, err := e.Discover(ctx); err != nil {
		return result{}, err
	}
	rs, err := e.Restore(ctx, tenant)
	if err == nil && rs.Generation == "" {
		err = fmt.Errorf("no pack to restore from")
	}
	if err != nil {
		return result{}, err
	}
	r := result{Actions: map[string]int{"parts": rs.Parts, "skipped": rs.Skipped, "restored": rs.Applied,
		"restore_ms": int(time.Since(start).Milliseconds())}}
	if rs.Replayed {
		r.Actions["replayed"] = 1
	}
	st, err := e.Round(ctx, tenant)
	if err == nil && e.CatchingUp(tenant) {
		err = fmt.Errorf("still catching up after the round")
	}
	r.Scanned, r.Applied, r.Listed, r.Skipped = st.Scanned, st.Applied(), st.Listed, st.Skipped
	for a, n := range st.Actions {
		if n > 0 {
			r.Actions[reconcile.Action(a).String()] = n
		}
	}
	return r, err
}
