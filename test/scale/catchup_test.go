package scale

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/s3/s3test"
	"github.com/cairnstore/cairn/internal/reconcile"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/store"
)

// TestCatchUpScale measures an empty node catching up with one tenant of n
// documents on an S3 server (versitygw on loopback): today's way (a round
// that reads every object), and from a catch-up pack (the restore, then
// the round that finds everything in sync), each in its own child
// process with its peak RSS. The default run is short (2,000 documents)
// and checks the outcomes; CAIRN_LONG=1 runs 100,000, and
// CAIRN_CATCHUP_KEYS=N any size (CAIRN_CATCHUP_BASELINE=0 skips today's
// way, which reads at a few hundred objects a second);
// CAIRN_CATCHUP_BACKEND=fs uses an fs backend instead of versitygw, and
// CAIRN_CATCHUP_ROUND=0 leaves out the round after the restore.
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
	empty := filepath.Join(dir, "restored")
	rr := run(t, job{Mode: "restore", Store: empty, Backend: be})
	report("restore from the pack", rr)
	if rr.Applied != n {
		t.Fatalf("the restore applied %d, want %d", rr.Applied, n)
	}
	if os.Getenv("CAIRN_CATCHUP_ROUND") == "0" {
		// The round after a restore lists the whole tenant; on versitygw
		// its pages each read the tenant's directory, so at a million
		// objects it runs for hours: it is left out on request.
		t.Logf("restore: %.0f docs/s; peak RSS %.1f MiB (round after it skipped: CAIRN_CATCHUP_ROUND=0)",
			float64(n)/rr.Seconds, mib(rr.HWMKiB))
		return
	}
	r = run(t, job{Mode: "round", Store: empty, Backend: be})
	report("round after the restore", r)
	if r.Scanned != n || r.Applied != 0 {
		t.Fatalf("the round after the restore: scanned %d, applied %d %v; want %d in sync", r.Scanned, r.Applied, r.Actions, n)
	}
	total := rr.Seconds + r.Seconds
	t.Logf("catch-up from a pack: %d documents in %.2f s = %.0f docs/s (restore %.0f docs/s); peak RSS %.1f MiB",
		n, total, float64(n)/total, float64(n)/rr.Seconds, mib(max(rr.HWMKiB, r.HWMKiB)))
}

// catchupModes are the child jobs of TestCatchUpScale (see job.run).
var catchupModes = map[string]func(context.Context, job, backend.Backend) (result, error){
	"fill-upload": fillUpload,
	"pack":        writePack,
	"restore":     restorePack,
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
	cfg := reconcile.Config{Store: s, Backend: be, Policy: pol, Tenants: []string{tenant}}
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
	if _, err := j.fill(ctx, s, nil); err != nil {
		return result{}, err
	}
	up, err := e.Upload(ctx, tenant)
	return result{Scanned: up.Scanned, Applied: up.Applied(), Actions: map[string]int{}}, err
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

func restorePack(ctx context.Context, j job, be backend.Backend) (result, error) {
	s, e, err := openEngine(j, be, store.Sync)
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	defer e.Close()
	if _, err := e.Discover(ctx); err != nil {
		return result{}, err
	}
	rs, err := e.Restore(ctx, tenant)
	if err == nil && rs.Generation == "" {
		err = fmt.Errorf("no pack to restore from")
	}
	return result{Applied: rs.Applied, Actions: map[string]int{"parts": rs.Parts, "skipped": rs.Skipped}}, err
}
