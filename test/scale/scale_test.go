// Package scale measures reconciliation at scale: the time and
// peak RSS of a full in-sync round over one tenant's documents, at two
// sizes, against the fs backend and against an S3 server (versitygw), and
// the rounds it takes to converge after documents changed on the backend.
//
// Every phase runs in a child process (this test binary, re-executed), so
// each peak RSS (VmHWM) is that phase's alone: the fill of the store and
// the backend does not count against the round. The default run is a
// short version (thousands of keys) that checks the outcomes; CAIRN_LONG=1
// runs the sizes docs/performance.md reports (100,000 and 1,000,000
// documents, 10,000 changed; S3: 100,000). scripts/bench-reconcile.sh runs
// it and prints the table.
package scale

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/fs"
	"github.com/cairnstore/cairn/internal/backend/s3"
	"github.com/cairnstore/cairn/internal/backend/s3/s3test"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/reconcile"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/store"
)

const childEnv = "CAIRN_SCALE_CHILD"

func TestMain(m *testing.M) {
	if arg := os.Getenv(childEnv); arg != "" {
		os.Exit(child(arg))
	}
	os.Exit(m.Run())
}

const tenant = "bench"

// job is what a child process does; result is what it reports.
type job struct {
	Mode     string // fill, round, change
	Store    string // the store's directory
	Backend  string // fs:/dir or s3:host:port
	From, To int    // fill: the keys [From, To); change: the key range
	Changed  int    // change: how many documents, spread over [From, To)
	Profile  string // round: a CPU profile file, or ""
	Digests  bool   // round: compare digests first (the node's default); fill: lay the tenant out
	Grow     int    // fill: lay the tenant out at 1/Grow of its keys first (see fillUpload)
}

type result struct {
	Seconds float64        `json:"seconds"`
	Scanned int            `json:"scanned"`
	Applied int            `json:"applied"`
	Actions map[string]int `json:"actions"`
	CPU     float64        `json:"cpu"`     // user + system seconds of the child
	HWMKiB  int64          `json:"hwm_kib"` // the child's VmHWM at the end
	// Where the memory is at the end of a round (not a fill): Pebble's
	// (outside the Go heap) and the Go runtime's.
	Pebble    store.MemoryStats `json:"pebble"`
	GoHeap    uint64            `json:"go_heap"`    // live and unswept heap objects
	GoRuntime uint64            `json:"go_runtime"` // all memory the Go runtime mapped, less released
	RSS       rssParts          `json:"rss"`        // the resident set at the end, by kind of mapping
	Err       string            `json:"err,omitempty"`
	Listed    int               `json:"listed"`  // remote objects the round listed
	Skipped   int               `json:"skipped"` // segments its digests let it skip
	// A fill's parts, in seconds: the store's writes, the uploader's
	// drain of them, and the first round (which, with digests, lists the
	// whole tenant and lays it out).
	Parts map[string]float64 `json:"parts,omitempty"`
}

func key(i int) string { return fmt.Sprintf("doc-%07d", i) }

// run runs j in a child process and returns its result.
func run(t *testing.T, j job) result {
	t.Helper()
	arg, _ := json.Marshal(j)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(arg))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", j.Mode, err, stderr.String())
	}
	var r result
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			if err := json.Unmarshal([]byte(v), &r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r.Err != "" {
		t.Fatalf("child %s: %s", j.Mode, r.Err)
	}
	return r
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func TestReconcileScale(t *testing.T) {
	small, large, changed, s3Keys := 500, 2500, 100, 2500
	if os.Getenv("CAIRN_LONG") == "1" {
		small, large, changed, s3Keys = 100_000, 1_000_000, 10_000, 1_000_000
	}
	if v := os.Getenv("CAIRN_SCALE_S3_KEYS"); v != "" {
		s3Keys, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("CAIRN_SCALE_KEYS"); v != "" { // large size only, for trying
		large, _ = strconv.Atoi(v)
	}
	profile := os.Getenv("CAIRN_SCALE_PROFILE") // a directory for CPU and heap profiles of the rounds
	// CAIRN_SCALE_DIR keeps the data for later rounds (it must be empty or
	// absent); with CAIRN_SCALE_REUSE=1 the test only runs the in-sync
	// rounds over a directory a full run left there, at its size (1M), e.g.
	// to measure them again when the machine is quieter
	// (CAIRN_SCALE_REUSE=digests: only the round with digests).
	dir := os.Getenv("CAIRN_SCALE_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	st, fsDir := filepath.Join(dir, "store"), "fs:"+filepath.Join(dir, "fs")
	report := func(what string, n int, r result) {
		t.Logf("%-34s keys %8d  %8.2f s (CPU %7.2f s)  peak RSS %6.1f MiB  scanned %d listed %d skipped %d applied %d %v",
			what, n, r.Seconds, r.CPU, mib(r.HWMKiB), r.Scanned, r.Listed, r.Skipped, r.Applied, r.Actions)
		if p := r.Parts; p != nil {
			if p["docs0"] > 0 {
				t.Logf("%-34s laid out at %.0f keys: store %.2f s, upload %.2f s (%.0f docs/s), round %.2f s listing %.0f", "",
					p["docs0"], p["store0"], p["upload0"], p["docs0"]/p["upload0"], p["round0"], p["listed0"])
			}
			t.Logf("%-34s store %.2f s, upload %.2f s (%.0f docs/s), round %.2f s", "",
				p["store"], p["upload"], p["docs"]/p["upload"], p["round"])
		}
		if p := r.Pebble; r.GoRuntime > 0 {
			t.Logf("%-34s memory at the end: block cache %.1f MiB (%d blocks), memtables %.1f MiB, %d of %d tables open; Go heap %.1f MiB, Go runtime %.1f MiB",
				"", float64(p.BlockCacheBytes)/(1<<20), p.BlockCacheCount, float64(p.MemTableBytes)/(1<<20),
				p.FileCacheTables, p.Tables, float64(r.GoHeap)/(1<<20), float64(r.GoRuntime)/(1<<20))
			m := r.RSS
			t.Logf("%-34s RSS at the end %.1f MiB: anonymous %.1f (of which the brk heap %.1f), files %.1f",
				"", mib(m.Total), mib(m.Anon), mib(m.Brk), mib(m.File))
		}
	}
	prof := func(name string) string {
		if profile == "" {
			return ""
		}
		return filepath.Join(profile, name+".pprof")
	}
	inSync := func(what string, n int, be, p string) result {
		t.Helper()
		r := run(t, job{Mode: "round", Store: st, Backend: be, Profile: p})
		report(what, n, r)
		if r.Scanned != n || r.Applied != 0 {
			t.Fatalf("%s: scanned %d applied %d, want %d scanned and nothing applied", what, r.Scanned, r.Applied, n)
		}
		return r
	}
	// digestInSync: the same round as a node runs it, comparing the
	// digests the fill laid out: it lists nothing.
	digestInSync := func(what string, n int, be string) result {
		t.Helper()
		r := run(t, job{Mode: "round", Store: st, Backend: be, Digests: true})
		report(what, n, r)
		if r.Listed > n/100 || r.Applied != 0 || r.Skipped == 0 {
			t.Fatalf("%s: listed %d of %d, applied %d, skipped %d segments; want under 1%% listed, nothing applied", what, r.Listed, n, r.Applied, r.Skipped)
		}
		return r
	}
	only := os.Getenv("CAIRN_SCALE_ONLY") // fs or s3: run only that backend's phases

	if reuse := os.Getenv("CAIRN_SCALE_REUSE"); reuse == "1" || reuse == "digests" {
		// Paired rounds over the same data, CAIRN_SCALE_REPEAT times
		// (default 1): listing everything (not with "digests"), then with
		// digests.
		reps, _ := strconv.Atoi(os.Getenv("CAIRN_SCALE_REPEAT"))
		var full, dig, fullCPU, digCPU []float64
		for range max(reps, 1) {
			if reuse == "1" {
				r := inSync("in-sync round, fs (reused data)", large, fsDir, prof("fs-reuse"))
				full, fullCPU = append(full, r.Seconds), append(fullCPU, r.CPU)
			}
			r := digestInSync("in-sync round with digests, fs (reused)", large, fsDir)
			dig, digCPU = append(dig, r.Seconds), append(digCPU, r.CPU)
		}
		if len(full) > 0 {
			t.Logf("medians of %d: listing everything %.2f s (CPU %.2f s)", len(full), median(full), median(fullCPU))
		}
		t.Logf("medians of %d: with digests %.2f s (CPU %.2f s)", len(dig), median(dig), median(digCPU))
		return
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Fatalf("%s is not empty: a full run needs an empty directory (CAIRN_SCALE_REUSE=1 reuses one)", dir)
	}
	if only != "s3" {
		fsPhases(t, run, report, inSync, digestInSync, prof, st, fsDir, small, large, changed)
	}
	if only == "fs" {
		return
	}
	// CAIRN_SCALE_GW_DIR: where the gateway keeps its objects (the
	// scripts use /dev/shm, so that the fill is not bound by the disk).
	g := s3test.StartIn(t, "scale", os.Getenv("CAIRN_SCALE_GW_DIR"))
	s3Store := filepath.Join(dir, "store-s3")
	be := "s3:" + g.Endpoint
	// The tenant is laid out at a seventh of its size and grows from there
	// (see job.fillUpload): the layout's listing stays short.
	r := run(t, job{Mode: "fill", Store: s3Store, Backend: be, From: 0, To: s3Keys, Digests: true, Grow: 7, Profile: prof("s3-fill")})
	report("fill + rounds (s3)", s3Keys, r)
	if r.Listed != 0 || r.Applied != 0 {
		t.Fatalf("the round after the fill listed %d, applied %d; want the digests to agree", r.Listed, r.Applied)
	}
	st = s3Store
	// A round listing everything reads the gateway's directory of the
	// tenant once a page, so its time grows with the square of the size:
	// it runs up to 100,000 documents (the size docs/performance.md
	// compares), beyond only with CAIRN_SCALE_S3_FULL=1.
	if full := os.Getenv("CAIRN_SCALE_S3_FULL"); full == "1" || full == "" && s3Keys <= 100_000 {
		inSync("in-sync round, s3 (versitygw)", s3Keys, be, prof("s3"))
	}
	digestInSync("in-sync round with digests, s3", s3Keys, be)
}

// fsPhases are the fs backend's phases: fills, in-sync rounds (listing
// everything, and with digests), a converging round.
func fsPhases(t *testing.T, run func(*testing.T, job) result, report func(string, int, result),
	inSync func(string, int, string, string) result, digestInSync func(string, int, string) result,
	prof func(string) string, st, fsDir string, small, large, changed int) {
	r := run(t, job{Mode: "fill", Store: st, Backend: fsDir, From: 0, To: small, Digests: true})
	report("fill + first round (fs, no fsync)", small, r)
	r1 := inSync("in-sync round, fs", small, fsDir, prof("fs-small"))
	digestInSync("in-sync round with digests, fs", small, fsDir)
	r = run(t, job{Mode: "fill", Store: st, Backend: fsDir, From: small, To: large, Digests: true})
	report("fill + first round (fs, no fsync)", large, r)
	r2 := inSync("in-sync round, fs", large, fsDir, prof("fs-large"))
	t.Logf("peak RSS at %d keys / at %d keys: %.2f", large, small, float64(r2.HWMKiB)/float64(r1.HWMKiB))
	digestInSync("in-sync round with digests, fs", large, fsDir)

	r = run(t, job{Mode: "change", Backend: fsDir, From: 0, To: large, Changed: changed})
	report("documents changed on the backend", changed, r)
	r = run(t, job{Mode: "round", Store: st, Backend: fsDir, Profile: prof("fs-converge")})
	report("converging round, fs", large, r)
	// Each changed document is read (fetch_remote, not counted as
	// applied) and downloaded; the round after it finds everything in sync.
	if r.Actions["download"] != changed || r.Applied != changed {
		t.Fatalf("converging round applied %v, want %d downloads and nothing else", r.Actions, changed)
	}
	inSync("round after it, fs", large, fsDir, "")
}

// child runs one job and prints its result; the exit code is 0 unless the
// job could not be read.
func child(arg string) int {
	var j job
	if err := json.Unmarshal([]byte(arg), &j); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	start := time.Now()
	r, err := j.run()
	r.Seconds = time.Since(start).Seconds()
	r.HWMKiB = vmHWM()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		r.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	if err != nil {
		r.Err = err.Error()
	}
	b, _ := json.Marshal(r)
	fmt.Printf("RESULT %s\n", b)
	return 0
}

func (j job) openBackend() (backend.Backend, error) {
	if dir, ok := strings.CutPrefix(j.Backend, "fs:"); ok {
		// Only the fill and the changes skip fsync; rounds run as a node does.
		return fs.OpenWith("fs", dir, fs.Options{NoSync: j.Mode != "round"})
	}
	endpoint := strings.TrimPrefix(j.Backend, "s3:")
	return s3.New("s3", s3.Config{Bucket: "scale", Endpoint: endpoint, Insecure: true, Creds: s3test.Creds()})
}

func (j job) run() (result, error) {
	ctx := context.Background()
	be, err := j.openBackend()
	if err != nil {
		return result{}, err
	}
	if j.Mode == "change" {
		return result{}, j.change(ctx, be)
	}
	if f := catchupModes[j.Mode]; f != nil { // catchup_test.go
		return f(ctx, j, be)
	}
	// The fill writes the store without fsync (bulk load); rounds use the
	// node's default durability, so their downloads are fsynced.
	dur := store.Sync
	if j.Mode == "fill" {
		dur = store.Buffered
	}
	cache, _ := strconv.ParseInt(os.Getenv("CAIRN_SCALE_CACHE_MIB"), 10, 64) // block cache; default if unset
	s, err := store.Open(j.Store, store.Options{NodeID: "scale", Durability: dur, CacheSize: cache << 20})
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	pol, err := resilience.New(resilience.Config{Backend: be.Name()})
	if err != nil {
		return result{}, err
	}
	cfg := reconcile.Config{Store: s, Backend: be, Policy: pol, Digests: j.Digests}
	if j.Mode == "fill" {
		fillConcurrency(&cfg)
	}
	e, err := reconcile.New(cfg)
	if err != nil {
		return result{}, err
	}
	defer e.Close()
	// A fill's profile covers its uploads and rounds.
	if j.Profile != "" {
		f, err := os.Create(j.Profile)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return result{}, err
		}
		defer pprof.StopCPUProfile()
	}
	parts := map[string]float64{}
	if j.Mode == "fill" {
		if err := j.fillUpload(ctx, s, e, parts); err != nil {
			return result{}, err
		}
	}
	t0 := time.Now()
	stats, err := e.Round(ctx, tenant)
	if j.Mode == "fill" {
		parts["round"] = time.Since(t0).Seconds()
	}
	if j.Profile != "" {
		if err := writeHeapProfile(strings.TrimSuffix(j.Profile, ".pprof") + ".heap"); err != nil {
			return result{}, err
		}
	}
	r := result{Scanned: stats.Scanned, Applied: stats.Applied(), Actions: map[string]int{}, Pebble: s.MemoryStats(),
		Listed: stats.Listed, Skipped: stats.Skipped}
	if j.Mode == "fill" {
		r.Parts = parts
	}
	r.GoHeap, r.GoRuntime = goMemory()
	r.RSS = readRSS()
	for a, n := range stats.Actions {
		if n > 0 {
			r.Actions[reconcile.Action(a).String()] = n
		}
	}
	return r, err
}

// fillConcurrency lets a fill's uploader (not measured) keep a slow
// backend busy: an S3 server answers each PUT after a round trip and a
// file write, so 8 uploads at once leave most of it idle.
func fillConcurrency(cfg *reconcile.Config) {
	cfg.UploadConcurrency, cfg.Limits.Concurrency = 32, 32
}

// fillUpload writes the documents [From, To) to the store and lets the
// uploader carry them to the backend, as on a node, timing each part in
// parts; the round that follows (the caller's) finds them in sync and,
// with digests and no layout yet, lays the tenant out.
//
// With Grow > 1 the tenant grows as a node's would after its layout: the
// keys i%Grow == 0 first, uploaded, and a round lays the tenant out over
// them; then the rest, uploaded by the same engine, which keeps its delta
// of the digest for each write. Segments end with about Grow × 1,000
// keys, so Grow < 8 stays within the layout (past 8, a round lays the
// tenant out again). It spares a listing of the whole tenant, which on
// versitygw is quadratic in the size (every page reads the tenant's
// directory): hours at a million objects, a minute at a seventh of it.
func (j job) fillUpload(ctx context.Context, s *store.Store, e *reconcile.Engine, parts map[string]float64) error {
	stage := func(suffix string, keep func(i int) bool) error {
		t0 := time.Now()
		n, err := j.fill(ctx, s, keep)
		if err != nil {
			return err
		}
		parts["store"+suffix], parts["docs"+suffix] = time.Since(t0).Seconds(), float64(n)
		t0 = time.Now()
		if _, err := e.Upload(ctx, tenant); err != nil {
			return err
		}
		parts["upload"+suffix] = time.Since(t0).Seconds()
		return nil
	}
	if j.Grow <= 1 {
		return stage("", nil)
	}
	if err := stage("0", func(i int) bool { return i%j.Grow == 0 }); err != nil {
		return err
	}
	t0 := time.Now()
	st, err := e.Round(ctx, tenant)
	if err != nil {
		return err
	}
	parts["round0"], parts["listed0"] = time.Since(t0).Seconds(), float64(st.Listed)
	return stage("", func(i int) bool { return i%j.Grow != 0 })
}

// fill writes the documents [From, To) that keep accepts (nil: all) to the
// store, 1000 to a batch, and returns how many it wrote.
func (j job) fill(ctx context.Context, s *store.Store, keep func(i int) bool) (int, error) {
	items := make([]store.Item, 0, 1000)
	n := 0
	for i := j.From; i < j.To; i++ {
		if keep != nil && !keep(i) {
			continue
		}
		items = append(items, store.Item{Key: key(i), Body: fmt.Appendf(nil, `{"n":%d,"v":0,"pad":"small document"}`, i)})
		n++
		if len(items) == cap(items) {
			if _, err := s.PutBatch(ctx, tenant, items); err != nil {
				return n, err
			}
			items = items[:0]
		}
	}
	if len(items) > 0 {
		if _, err := s.PutBatch(ctx, tenant, items); err != nil {
			return n, err
		}
	}
	return n, nil
}

// change writes a new version of Changed documents spread over [From, To)
// to the backend, as another node would: derived from the version there,
// so the node's round downloads them.
func (j job) change(ctx context.Context, be backend.Backend) error {
	step := (j.To - j.From) / j.Changed
	ts := doc.MakeTimestamp(time.Now().UnixMilli(), 0)
	for c := range j.Changed {
		k := key(j.From + c*step)
		o, err := be.Get(ctx, tenant, k)
		if err != nil {
			return err
		}
		body := fmt.Appendf(nil, `{"n":%d,"v":1,"pad":"changed elsewhere"}`, j.From+c*step)
		v := doc.Derive(&o.Version, 77, ts, body, false)
		if _, err := be.Put(ctx, tenant, k, v, body, backend.Precondition{IfMatch: o.ETag}); err != nil {
			return err
		}
	}
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

// vmHWM is this process's peak resident set size, in KiB.
func vmHWM() int64 {
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// goMemory returns the Go heap's objects (live and not yet swept) and all
// memory the Go runtime holds mapped, less what it released to the OS.
func goMemory() (heap, total uint64) {
	ms := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(ms)
	return ms[0].Value.Uint64(), ms[1].Value.Uint64() - ms[2].Value.Uint64()
}

// rssParts splits the resident set (KiB) by kind of mapping, from
// /proc/self/smaps: anonymous memory (the Go runtime's, and C malloc's,
// where Pebble's block cache and memtables live when built with cgo), of
// which the C heap grown by brk ([heap], glibc's main arena), and file
// mappings (the binary). The Go heap's own addresses are randomized, so
// the Go share is taken from runtime/metrics (result.GoRuntime) instead.
type rssParts struct {
	Total, Anon, Brk, File int64
}

func readRSS() rssParts {
	var p rssParts
	raw, _ := os.ReadFile("/proc/self/smaps")
	var brk, file bool
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if strings.Contains(f[0], "-") && len(f) >= 5 { // a mapping's header
			brk = len(f) >= 6 && f[5] == "[heap]"
			file = len(f) >= 6 && !strings.HasPrefix(f[5], "[")
			continue
		}
		if f[0] != "Rss:" {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		p.Total += n
		switch {
		case file:
			p.File += n
		case brk:
			p.Brk += n
			p.Anon += n
		default:
			p.Anon += n
		}
	}
	return p
}
