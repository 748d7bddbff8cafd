package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/pack"
	"github.com/cairnstore/cairn/internal/store"
)

// blobMem is a mem backend that counts document and blob reads, and can
// fail a blob read.
type blobMem struct {
	*mem.Mem
	mu      sync.Mutex     // guards the following
	gets    map[string]int // GetBlob calls by name
	objGets int            // Get calls (documents)
	failGet func(name string) error
	failPut func(name string) error
}

func (b *blobMem) PutBlob(ctx context.Context, name string, data []byte, pre backend.Precondition) (string, error) {
	b.mu.Lock()
	fail := b.failPut
	b.mu.Unlock()
	if fail != nil {
		if err := fail(name); err != nil {
			return "", err
		}
	}
	return b.Mem.PutBlob(ctx, name, data, pre)
}

func newBlobMem(name string) *blobMem {
	return &blobMem{Mem: mem.New(name), gets: map[string]int{}}
}

func (b *blobMem) Get(ctx context.Context, tenant, key string) (*backend.Object, error) {
	b.mu.Lock()
	b.objGets++
	b.mu.Unlock()
	return b.Mem.Get(ctx, tenant, key)
}

func (b *blobMem) GetBlob(ctx context.Context, name string) ([]byte, string, error) {
	b.mu.Lock()
	b.gets[name]++
	fail := b.failGet
	b.mu.Unlock()
	if fail != nil {
		if err := fail(name); err != nil {
			return nil, "", err
		}
	}
	return b.Mem.GetBlob(ctx, name)
}

func (b *blobMem) names(prefix string) []string {
	var ns []string
	after := ""
	for {
		p, err := b.ListBlobs(bg, prefix, after, 0)
		if err != nil {
			panic(err)
		}
		for _, e := range p.Entries {
			ns = append(ns, e.Key)
		}
		if !p.More {
			return ns
		}
		after = ns[len(ns)-1]
	}
}

func (b *blobMem) damage(t *testing.T, name string, f func([]byte)) {
	t.Helper()
	data, _, err := b.Mem.GetBlob(bg, name)
	if err != nil {
		t.Fatal(err)
	}
	f(data)
	if _, err := b.PutBlob(bg, name, data, backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
}

// packedTenant fills b with n documents of tenant written on an origin
// node (every fifth one deleted), brought in sync by a round, and writes a
// pack of small parts. It returns the origin's store and the manifest.
func packedTenant(t *testing.T, b *blobMem, n int) (*store.Store, *pack.Manifest) {
	t.Helper()
	origin := openStore(t, "origin")
	for i := range n {
		put(t, origin, fmt.Sprintf("k%04d", i), fmt.Sprintf(`{"i":%d}`, i))
		if i%5 == 4 {
			del(t, origin, fmt.Sprintf("k%04d", i))
		}
	}
	e := newEngine(t, origin, b, func(c *Config) { c.Packs.PartSize = 2048 })
	if _, err := e.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	runRound(t, e)
	m, err := e.WritePack(bg, tenant, true)
	if err != nil {
		t.Fatal(err)
	}
	if m == nil || m.Docs != int64(n) || len(m.Parts) < 3 {
		t.Fatalf("pack of %d documents: %+v", n, m)
	}
	return origin, m
}

// TestRestoreFromPack: an empty node restores a tenant from the pack
// without reading a document object; every document, tombstone and base
// matches the origin's; the round that follows reads only what changed
// since the pack (one key rewritten by the origin), and nothing restored is
// uploaded again.
func TestRestoreFromPack(t *testing.T) {
	b := newBlobMem("b")
	origin, m := packedTenant(t, b, 200)
	changed := put(t, origin, "k0007", `{"changed":true}`)
	oe := newEngine(t, origin, b, nil)
	if _, err := oe.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}

	st := openStore(t, "empty")
	e := newEngine(t, st, b, func(c *Config) { c.Tenants = []string{tenant} })
	if _, err := e.Discover(bg); err != nil {
		t.Fatal(err)
	}
	b.objGets = 0
	rs, err := e.Restore(bg, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Generation != m.Generation || rs.Applied != 200 || rs.Parts != len(m.Parts) || b.objGets != 0 {
		t.Fatalf("Restore = %+v with %d document reads; want %d entries of %s from %d parts, no reads", rs, b.objGets, 200, m.Generation, len(m.Parts))
	}
	if !e.CatchingUp(tenant) {
		t.Fatal("a restored tenant stopped catching up before its round")
	}
	if again, err := e.Restore(bg, tenant); err != nil || again.Generation != "" {
		t.Fatalf("second Restore = %+v, %v; want nothing done", again, err)
	}
	rst := runRound(t, e)
	if rst.Actions[Download] != 1 || b.objGets != 1 {
		t.Fatalf("round after the restore: %d downloads, %d document reads; want 1 each (the changed key)", rst.Actions[Download], b.objGets)
	}
	if e.CatchingUp(tenant) {
		t.Fatal("still catching up after the round")
	}
	for i := range 200 {
		k := fmt.Sprintf("k%04d", i)
		got, gok := localState(t, st, k)
		want, wok := localState(t, origin, k)
		if gok != wok || got != want {
			t.Fatalf("%s: restored %+v %v, origin %+v %v", k, got, gok, want, wok)
		}
		if k == "k0007" && got.id != changed.Version.ID() {
			t.Fatalf("k0007 is %v after the round, want the origin's rewrite", got.id)
		}
	}
	up, err := e.Upload(bg, tenant)
	if err != nil || up.Actions[Upload] != 0 {
		t.Fatalf("upload after restore: %+v, %v; want nothing uploaded", up.Actions, err)
	}
	if rst := runRound(t, e); rst.Applied() != 0 {
		t.Fatalf("a further round applied %d", rst.Applied())
	}
}

// TestRestoreDespiteClientWrites: a node empty at start restores from the
// pack although clients wrote to the tenant (or read through, which stores
// what was served) before its first round; a store that held rows of the
// tenant when the engine started is brought up to date by the round.
func TestRestoreDespiteClientWrites(t *testing.T) {
	b := newBlobMem("b")
	_, m := packedTenant(t, b, 50)

	st := openStore(t, "empty")
	e := newEngine(t, st, b, func(c *Config) { c.Tenants = []string{tenant} })
	put(t, st, "client-write", `{"during":"catch-up"}`)
	if _, err := e.Discover(bg); err != nil {
		t.Fatal(err)
	}
	rs, err := e.Restore(bg, tenant)
	if err != nil || rs.Generation != m.Generation || rs.Applied != 50 {
		t.Fatalf("Restore = %+v, %v; want the pack's 50 entries", rs, err)
	}
	if _, ok := localState(t, st, "client-write"); !ok {
		t.Fatal("the client's write is gone")
	}

	held := openStore(t, "held")
	put(t, held, "k0001", `{"old":true}`)
	he := newEngine(t, held, b, func(c *Config) { c.Tenants = []string{tenant} })
	if _, err := he.Discover(bg); err != nil {
		t.Fatal(err)
	}
	if rs, err := he.Restore(bg, tenant); err != nil || rs.Generation != "" {
		t.Fatalf("Restore on a store that held the tenant = %+v, %v; want nothing done", rs, err)
	}
}

// TestRestoreOnceAcrossBackends: a node with two backends, each holding a
// pack of the tenant, restores it from one; the other's round brings the
// copy up to date instead of reading a whole pack to skip every entry. A
// backend that holds the documents but no pack leaves the restore to one
// that has a pack, whichever asks first.
func TestRestoreOnceAcrossBackends(t *testing.T) {
	two := func(t *testing.T, b1, b2 backend.Backend) (*Engine, *Engine) {
		st := openStore(t, "empty")
		claims := &RestoreClaims{}
		e1 := newEngine(t, st, b1, func(c *Config) { c.Tenants, c.RestoreClaim = []string{tenant}, claims.For("b1") })
		e2 := newEngine(t, st, b2, func(c *Config) { c.Tenants, c.RestoreClaim = []string{tenant}, claims.For("b2") })
		for _, e := range []*Engine{e1, e2} {
			if _, err := e.Discover(bg); err != nil {
				t.Fatal(err)
			}
		}
		return e1, e2
	}
	t.Run("both packed", func(t *testing.T) {
		b1, b2 := newBlobMem("b1"), newBlobMem("b2")
		packedTenant(t, b1, 50)
		packedTenant(t, b2, 50)
		e1, e2 := two(t, b1, b2)
		if rs, err := e1.Restore(bg, tenant); err != nil || rs.Applied != 50 {
			t.Fatalf("the first backend's restore: %+v, %v", rs, err)
		}
		if rs, err := e2.Restore(bg, tenant); err != nil || rs.Generation != "" {
			t.Fatalf("the second backend's restore: %+v, %v; want none", rs, err)
		}
	})
	t.Run("no pack on the first", func(t *testing.T) {
		b1, b2 := newBlobMem("b1"), newBlobMem("b2")
		origin, _ := packedTenant(t, b2, 50)
		up := newEngine(t, origin, b1, nil)
		if _, err := up.Upload(bg, tenant); err != nil {
			t.Fatal(err)
		}
		e1, e2 := two(t, b1, b2)
		if rs, err := e1.Restore(bg, tenant); err != nil || rs.Generation != "" {
			t.Fatalf("b1 has no pack: %+v, %v", rs, err)
		}
		if rs, err := e2.Restore(bg, tenant); err != nil || rs.Applied != 50 {
			t.Fatalf("b2's restore from its pack: %+v, %v; want 50 applied", rs, err)
		}
	})
}

// TestRestoreResumes: a restore that fails in the middle resumes at the
// part that failed: the parts applied before are not read again.
func TestRestoreResumes(t *testing.T) {
	b := newBlobMem("b")
	_, m := packedTenant(t, b, 200)
	broken := pack.PartName(tenant, m.Generation, 3)
	b.failGet = func(name string) error {
		if name == broken {
			return fault.New(fault.Transient, fault.Context{Key: name}, "injected")
		}
		return nil
	}
	st := openStore(t, "empty")
	e := newEngine(t, st, b, func(c *Config) { c.Tenants = []string{tenant}; c.Packs.Parallel = 1 })
	if _, err := e.Discover(bg); err != nil {
		t.Fatal(err)
	}
	rs, err := e.Restore(bg, tenant)
	if fault.ClassOf(err) != fault.Transient || rs.Parts != 2 {
		t.Fatalf("Restore with part 3 failing = %+v, %v; want 2 parts then the transient error", rs, err)
	}
	cp, err := e.loadCheckpoint(tenant)
	if err != nil || cp.packGen != m.Generation || cp.packPart != 2 || cp.packDone {
		t.Fatalf("checkpoint after the failure: %+v, %v", cp, err)
	}
	b.mu.Lock()
	b.failGet = nil
	clear(b.gets)
	b.mu.Unlock()
	// A new engine on the same store: the restart after a crash.
	e2 := newEngine(t, st, b, func(c *Config) { c.Tenants = []string{tenant} })
	if _, err := e2.Discover(bg); err != nil {
		t.Fatal(err)
	}
	rs, err = e2.Restore(bg, tenant)
	if err != nil || rs.Parts != len(m.Parts)-2 || rs.Applied+rs.Skipped != int(m.Docs)-m.Parts[0].Docs-m.Parts[1].Docs {
		t.Fatalf("resumed Restore = %+v, %v; want the %d parts after the first two", rs, err, len(m.Parts)-2)
	}
	for i := 1; i <= 2; i++ {
		if n := b.gets[pack.PartName(tenant, m.Generation, i)]; n != 0 {
			t.Fatalf("part %d read %d times by the resumed restore", i, n)
		}
	}
	if n := count(t, st, tenant); n != 200 {
		t.Fatalf("%d keys after the resumed restore, want 200", n)
	}
}

func count(t *testing.T, st *store.Store, tenant string) int {
	t.Helper()
	n := 0
	for _, err := range st.List(bg, tenant, store.ListOptions{Tombstones: true, KeysOnly: true}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// TestRestoreCancelled: a restore whose context ends while a part is read
// (the node told to stop) is neither a damaged pack nor done: it resumes
// from that part at the next start. Whether the applier meets the context
// or the closed channel of parts first is the scheduler's choice, so the
// scenario runs several times.
func TestRestoreCancelled(t *testing.T) {
	b := newBlobMem("b")
	_, m := packedTenant(t, b, 200)
	second := pack.PartName(tenant, m.Generation, 2)
	for i := range 20 {
		ctx, cancel := context.WithCancel(bg)
		b.failGet = func(name string) error {
			if name == second {
				cancel()
			}
			return nil
		}
		st := openStore(t, fmt.Sprintf("empty%d", i))
		e := newEngine(t, st, b, func(c *Config) { c.Tenants = []string{tenant}; c.Packs.Parallel = 1 })
		if _, err := e.Discover(bg); err != nil {
			t.Fatal(err)
		}
		_, err := e.Restore(ctx, tenant)
		cancel()
		cp, _ := e.loadCheckpoint(tenant)
		if err == nil || fault.ClassOf(err) == fault.Corruption || cp.packDone {
			t.Fatalf("a cancelled restore: %v (%v), checkpoint done %v; want the context's error and not done", err, fault.ClassOf(err), cp.packDone)
		}
	}
}

// TestRestoreDamagedPack: a damaged part ends the restore as Corruption
// and is not tried again; the round restores the rest from the objects.
func TestRestoreDamagedPack(t *testing.T) {
	b := newBlobMem("b")
	origin, m := packedTenant(t, b, 100)
	name := pack.PartName(tenant, m.Generation, 2)
	b.damage(t, name, func(d []byte) { d[40] ^= 1 })
	st := openStore(t, "empty")
	e := newEngine(t, st, b, func(c *Config) { c.Tenants = []string{tenant} })
	if _, err := e.Discover(bg); err != nil {
		t.Fatal(err)
	}
	rs, err := e.Restore(bg, tenant)
	if !errors.Is(err, fault.ErrCorruption) || rs.Parts != 1 {
		t.Fatalf("Restore of a damaged part 2 = %+v, %v; want part 1 applied, then Corruption", rs, err)
	}
	if again, err := e.Restore(bg, tenant); err != nil || again.Generation != "" {
		t.Fatalf("Restore after a damaged pack = %+v, %v; want it not tried again", again, err)
	}
	runRound(t, e)
	for i := range 100 {
		k := fmt.Sprintf("k%04d", i)
		got, _ := localState(t, st, k)
		want, _ := localState(t, origin, k)
		if got != want {
			t.Fatalf("%s: %+v, want %+v", k, got, want)
		}
	}
}

// TestPackRetention: a pack is written only when the newest is older than
// Packs.Every; a superseded generation, and an incomplete one, are deleted
// once a newer complete one has existed for Packs.Keep, not before.
func TestPackRetention(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b, e := retentionEngine(t, PackConfig{Every: time.Hour, Keep: 10 * time.Minute, MinDocs: 1}, func() time.Time { return now })
	m1, err := e.WritePack(bg, tenant, false)
	if err != nil || m1 == nil || m1.Docs != 10 {
		t.Fatalf("first WritePack = %+v, %v", m1, err)
	}
	// A generation a crashed writer left without a manifest.
	now = now.Add(time.Minute)
	abandoned := pack.NewGeneration(now, 1)
	if _, err := b.PutBlob(bg, pack.PartName(tenant, abandoned, 1), []byte("x"), backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Minute)
	if m, err := e.WritePack(bg, tenant, false); err != nil || m != nil {
		t.Fatalf("WritePack with a pack 31 minutes old = %+v, %v; want none written", m, err)
	}
	now = now.Add(time.Hour)
	m2, err := e.WritePack(bg, tenant, false)
	if err != nil || m2 == nil {
		t.Fatalf("WritePack with a pack older than Every = %+v, %v", m2, err)
	}
	gens := func() []string { return packGenerations(b, tenant) }
	if g := gens(); len(g) != 3 {
		t.Fatalf("generations right after the second pack: %v; want all 3 kept for Keep", g)
	}
	now = now.Add(10 * time.Minute)
	if m, err := e.WritePack(bg, tenant, false); err != nil || m != nil {
		t.Fatalf("WritePack = %+v, %v; want retention only", m, err)
	}
	if g := gens(); !slices.Equal(g, []string{m2.Generation}) {
		t.Fatalf("generations after Keep: %v; want only %s", g, m2.Generation)
	}
}

// TestPackRetentionAtServeDefaults: with Keep at its default (no shorter
// than Every), as cairn serve configures it, a node writing a pack every
// Every keeps the newest generation and the one it superseded, not every
// generation it ever wrote.
func TestPackRetentionAtServeDefaults(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b, e := retentionEngine(t, PackConfig{Every: 10 * time.Minute, MinDocs: 1}, func() time.Time { return now })
	gens := func() []string { return packGenerations(b, tenant) }
	written := 0
	for range 240 { // a round every 30 s for two hours
		m, err := e.WritePack(bg, tenant, false)
		if err != nil {
			t.Fatal(err)
		}
		if m != nil {
			written++
		}
		if g := gens(); len(g) > 2 {
			t.Fatalf("after %d packs: %d generations kept, want at most 2: %v", written, len(g), g)
		}
		now = now.Add(30 * time.Second)
	}
	if written < 10 {
		t.Fatalf("%d packs written in two hours with Every 10m", written)
	}
}

// TestPacksDroppedBelowMinDocs: a tenant below the pack minimum keeps no
// pack once it is Keep old. Its packs (from when it was larger) hold the
// bodies of documents deleted since, and no newer pack comes to supersede
// them. A round resumed from a cursor counts only the keys after it: too
// few of those say nothing of the tenant's size, and drop nothing.
func TestPacksDroppedBelowMinDocs(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b, e := retentionEngine(t, PackConfig{Every: time.Hour, Keep: 10 * time.Minute, MinDocs: 20}, func() time.Time { return now })
	m, err := e.WritePack(bg, tenant, true) // written when the tenant was larger
	if err != nil || m == nil {
		t.Fatalf("WritePack = %+v, %v", m, err)
	}
	gens := func() []string { return packGenerations(b, tenant) }
	asked := func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.packDrop[tenant] || e.packWant[tenant]
	}
	e.wantPack(tenant, 3, false) // a resumed round's count
	if asked() {
		t.Fatal("a resumed round that scanned 3 keys asked for the tenant's packs to go")
	}
	if err := e.dropPacks(bg, tenant); err != nil || len(gens()) != 1 {
		t.Fatalf("dropPacks of a pack younger than Keep: %v, generations %v; want it kept", err, gens())
	}
	now = now.Add(10 * time.Minute)
	if err := e.dropPacks(bg, tenant); err != nil || len(gens()) != 0 {
		t.Fatalf("dropPacks of a pack Keep old: %v, generations %v; want none", err, gens())
	}
	// Known to have none: a round of the small tenant asks for nothing.
	e.wantPack(tenant, 10, true)
	if asked() {
		t.Fatal("a round of a small tenant with no pack left asked the pack goroutine again")
	}
}

// retentionEngine is an engine over a store of 10 documents of tenant,
// uploaded to a fresh blob backend, with packs configured by packs and
// the clock now.
func retentionEngine(t *testing.T, packs PackConfig, now func() time.Time) (*blobMem, *Engine) {
	t.Helper()
	b := newBlobMem("b")
	origin := openStore(t, "origin")
	for i := range 10 {
		put(t, origin, fmt.Sprintf("k%d", i), `{}`)
	}
	e := newEngine(t, origin, b, func(c *Config) {
		c.Now = now
		c.Packs = packs
	})
	if _, err := e.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	return b, e
}

// packGenerations lists the pack generations of tenant in b, oldest first.
func packGenerations(b *blobMem, tenant string) []string {
	var gs []string
	for _, n := range b.names(pack.Prefix(tenant)) {
		if g, _, ok := pack.ParseName(tenant, n); ok && !slices.Contains(gs, g) {
			gs = append(gs, g)
		}
	}
	return gs
}

// TestPackLeavesOutUnsynced: a pack holds only what the node and the
// backend agree on: not a key rewritten since its upload, nor one never
// uploaded.
func TestPackLeavesOutUnsynced(t *testing.T) {
	b := newBlobMem("b")
	origin := openStore(t, "origin")
	put(t, origin, "a", `{}`)
	put(t, origin, "b", `{}`)
	e := newEngine(t, origin, b, nil)
	if _, err := e.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	put(t, origin, "a", `{"v":2}`)
	put(t, origin, "c", `{}`)
	m, err := e.WritePack(bg, tenant, true)
	if err != nil || m.Docs != 1 || m.Parts[0].First != "b" || m.Parts[0].Last != "b" {
		t.Fatalf("pack = %+v, %v; want only b", m, err)
	}
}

// TestRestoreGenerationGone: a restore resuming on a generation that
// retention deleted meanwhile starts over from the newest one.
func TestRestoreGenerationGone(t *testing.T) {
	b := newBlobMem("b")
	_, m := packedTenant(t, b, 100)
	st := openStore(t, "empty")
	e := newEngine(t, st, b, func(c *Config) { c.Tenants = []string{tenant} })
	if _, err := e.Discover(bg); err != nil {
		t.Fatal(err)
	}
	gone := pack.NewGeneration(time.Unix(1, 0), 1) // named by the checkpoint, absent from the backend
	if err := e.updateCheckpoint(tenant, func(c *checkpoint) { c.packGen, c.packPart = gone, 3 }); err != nil {
		t.Fatal(err)
	}
	rs, err := e.Restore(bg, tenant)
	if err != nil || rs.Generation != m.Generation || rs.Applied != 100 {
		t.Fatalf("Restore resuming a deleted generation = %+v, %v; want all of %s", rs, err, m.Generation)
	}
	if cp, err := e.loadCheckpoint(tenant); err != nil || !cp.packDone || cp.packGen != "" {
		t.Fatalf("checkpoint after the restore: %+v, %v", cp, err)
	}
}

// TestRestoreBatchBytes: a restore's store batches stop at applyBytes of
// bodies, so large documents are not held a thousand at a time (the
// applyAhead batches in flight may share a commit).
func TestRestoreBatchBytes(t *testing.T) {
	b := newBlobMem("b")
	origin := openStore(t, "origin")
	body := `{"pad":"` + strings.Repeat("x", 600<<10) + `"}`
	const n = 20
	for i := range n {
		put(t, origin, fmt.Sprintf("big%02d", i), body)
	}
	oe := newEngine(t, origin, b, nil)
	if _, err := oe.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := oe.WritePack(bg, tenant, true); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	largest := 0
	st, err := store.Open(t.TempDir(), store.Options{NodeID: "empty", Durability: store.Buffered,
		OnCommit: func(size int, _ time.Duration) {
			mu.Lock()
			largest = max(largest, size)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newEngine(t, st, b, func(c *Config) { c.Tenants = []string{tenant} })
	if _, err := e.Discover(bg); err != nil {
		t.Fatal(err)
	}
	rs, err := e.Restore(bg, tenant)
	if err != nil || rs.Applied != n {
		t.Fatalf("Restore = %+v, %v", rs, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := applyAhead * (applyBytes/len(body) + 1); largest > want {
		t.Fatalf("a restore batch committed %d documents of %d bytes; want at most %d", largest, len(body), want)
	}
}

// TestRestorePassesOverOldPack: a pack older than PackConfig.MaxAge (the
// tombstones' grace) holds, live, documents deleted after it whose
// tombstones may be collected by now, so nothing says they were deleted:
// an empty node does not restore from it, and its round restores object by
// object, without the deleted document.
func TestRestorePassesOverOldPack(t *testing.T) {
	b := newBlobMem("b")
	origin, _ := packedTenant(t, b, 50)
	del(t, origin, "k0001")
	oe := newEngine(t, origin, b, nil)
	if _, err := oe.Upload(bg, tenant); err != nil {
		t.Fatal(err)
	}
	// The tombstone's grace passes and the collector removes it from the
	// backend (and from every node).
	if err := b.Mem.Delete(bg, tenant, "k0001", backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }

	restore := func(maxAge time.Duration) (*store.Store, RestoreStats) {
		st := openStore(t, "empty")
		e := newEngine(t, st, b, func(c *Config) {
			c.Tenants, c.Now, c.Packs.MaxAge = []string{tenant}, later, maxAge
		})
		if _, err := e.Discover(bg); err != nil {
			t.Fatal(err)
		}
		rs, err := e.Restore(bg, tenant)
		if err != nil {
			t.Fatal(err)
		}
		runRound(t, e)
		return st, rs
	}
	st, rs := restore(time.Hour)
	if rs.Generation != "" || rs.Applied != 0 {
		t.Fatalf("Restore from a pack 2h old with MaxAge 1h: %+v; want it passed over", rs)
	}
	if _, ok := localState(t, st, "k0001"); ok {
		t.Fatal("the document deleted after the pack is back")
	}
	for _, k := range []string{"k0000", "k0049"} {
		if _, ok := localState(t, st, k); !ok {
			t.Fatalf("%s not restored by the round", k)
		}
	}
	st, rs = restore(0)
	if rs.Applied != 50 {
		t.Fatalf("Restore without a bound: %+v; want the pack's 50 entries", rs)
	}
	_, back := localState(t, st, "k0001")
	t.Logf("without the bound: the deleted document is back: %v", back)
}

// TestFailedPackDeleted: a pack whose writing fails part-way (a full
// backend) has the parts it wrote deleted, so a leftover does not take the
// room the documents and the feed need; the next attempt writes it whole.
func TestFailedPackDeleted(t *testing.T) {
	b := newBlobMem("b")
	origin := openStore(t, "origin")
	for i := range 40 {
		put(t, origin, fmt.Sprintf("k%04d", i), fmt.Sprintf(`{"i":%d}`, i))
	}
	e := newEngine(t, origin, b, func(c *Config) { c.Packs.PartSize = 1024 })
	runRound(t, e)
	full := fault.New(fault.Exhausted, fault.Context{}, "no space left on device")
	b.failPut = func(name string) error {
		if strings.HasSuffix(name, "part-000003") {
			return full
		}
		return nil
	}
	if _, err := e.WritePack(bg, tenant, true); fault.ClassOf(err) != fault.Exhausted {
		t.Fatalf("WritePack on a backend full at the third part: %v; want the failure", err)
	}
	if left := b.names(pack.Prefix(tenant)); len(left) != 0 {
		t.Fatalf("after the failed pack: %v left; want its parts deleted", left)
	}
	b.failPut = nil
	if m, err := e.WritePack(bg, tenant, true); err != nil || m == nil || m.Docs != 40 || len(m.Parts) < 3 {
		t.Fatalf("WritePack once there is room: %+v, %v", m, err)
	}
}

// TestFailedPackNotRetriedAtOnce: after a pack of a tenant fails, the pack
// goroutine does not try it again before Packs.Keep; then it does.
func TestFailedPackNotRetriedAtOnce(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := newBlobMem("b")
	origin := openStore(t, "origin")
	for i := range 40 {
		put(t, origin, fmt.Sprintf("k%04d", i), fmt.Sprintf(`{"i":%d}`, i))
	}
	e := newEngine(t, origin, b, func(c *Config) {
		c.Packs = PackConfig{Every: time.Hour, Keep: 10 * time.Minute, MinDocs: 1, PartSize: 1024}
		c.Now = func() time.Time { return now }
	})
	runRound(t, e)
	tries := 0
	b.failPut = func(name string) error {
		tries++
		return fault.New(fault.Exhausted, fault.Context{}, "no space left on device")
	}
	e.packTenant(bg, tenant)
	now = now.Add(time.Minute)
	e.packTenant(bg, tenant)
	if tries != 1 {
		t.Fatalf("%d tries within Keep of a failed pack, want 1", tries)
	}
	now = now.Add(10 * time.Minute)
	b.failPut = nil
	e.packTenant(bg, tenant)
	if g := packGenerations(b, tenant); len(g) != 1 {
		t.Fatalf("after Keep: generations %v, want the pack written", g)
	}
}
