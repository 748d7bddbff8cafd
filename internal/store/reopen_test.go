package store

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store/storetest"
)

// fakeWall is a settable wall clock.
type fakeWall struct{ ms atomic.Int64 }

func (w *fakeWall) now() time.Time { return time.UnixMilli(w.ms.Load()) }

// TestReopen: identity, data, seqs and the HLC survive a restart, and the
// HLC stays monotonic although the wall clock stepped back an hour across it.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	wall := &fakeWall{}
	wall.ms.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	s, err := Open(dir, Options{NodeID: "n1", Wall: wall.now})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Identity()
	if id.NodeID != "n1" || id.Incarnation == 0 {
		t.Fatalf("identity %+v", id)
	}
	var last Record
	for i := range 5 {
		last = mustPut(t, s, "t", fmt.Sprintf("k%d", i), fmt.Sprint(i))
	}
	if err := s.PutCheckpoint("b", "t", []byte("cp")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	wall.ms.Add(-time.Hour.Milliseconds()) // the clock stepped back while down
	s = openT(t, dir, Options{Wall: wall.now})
	if s.Identity() != id {
		t.Fatalf("identity after reopen %+v, want %+v", s.Identity(), id)
	}
	for i := range 5 {
		r, err := s.Get(bg, "t", fmt.Sprintf("k%d", i))
		if err != nil || string(r.Body) != fmt.Sprint(i) {
			t.Fatalf("k%d after reopen: %+v, %v", i, r, err)
		}
	}
	if cp, ok, _ := s.Checkpoint("b", "t"); !ok || string(cp) != "cp" {
		t.Fatalf("checkpoint after reopen: %q %v", cp, ok)
	}
	next := mustPut(t, s, "t", "k4", "again")
	if next.Seq <= last.Seq {
		t.Fatalf("seq after reopen %d, not after %d", next.Seq, last.Seq)
	}
	if next.Version.HLC <= last.Version.HLC {
		t.Fatalf("HLC after reopen %v, not after %v (wall stepped back)", next.Version.HLC, last.Version.HLC)
	}
	if next.Version.Vector.Get(id.Incarnation) != last.Version.Vector.Get(id.Incarnation)+1 || next.Version.Parent != last.Version.ID() {
		t.Fatalf("vector after reopen %v", next.Version.Vector)
	}
	checkConsistent(t, s)
}

func TestIdentity(t *testing.T) {
	a := openT(t, "", Options{})
	b := openT(t, "", Options{})
	if a.Identity().Incarnation == b.Identity().Incarnation {
		t.Fatal("two new directories got the same incarnation")
	}
	if !strings.HasPrefix(a.Identity().NodeID, "node-") {
		t.Fatalf("default node id %q", a.Identity().NodeID)
	}

	dir := t.TempDir()
	s, err := Open(dir, Options{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "t", "k", "{}")
	s.Close()
	_, err = Open(dir, Options{NodeID: "n2"})
	wantClass(t, "open as another node", err, fault.Config)

	if err := os.Remove(filepath.Join(dir, identityFile)); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{})
	wantClass(t, "open with data but no identity", err, fault.Config)

	if err := os.WriteFile(filepath.Join(dir, identityFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{})
	wantClass(t, "open with a damaged identity", err, fault.Corruption)
}

// TestMadeUpIDAdopted: a directory whose node id was made up (no NodeID at
// its first open) takes the NodeID it is next opened with while it holds
// no write, and keeps it; once it holds writes, another NodeID is refused.
func TestMadeUpIDAdopted(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	madeUp := s.Identity()
	s.Close()
	s, err = Open(dir, Options{NodeID: "n1"})
	if err != nil {
		t.Fatalf("reopening an empty directory with a made-up id as n1: %v", err)
	}
	if id := s.Identity(); id.NodeID != "n1" || id.Incarnation != madeUp.Incarnation {
		t.Errorf("identity after adopting n1: %+v, want n1 with incarnation %x", id, madeUp.Incarnation)
	}
	s.Close()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Identity().NodeID; got != "n1" {
		t.Errorf("reopened without a node id: %q, want n1 kept", got)
	}
	s.Close()

	written := t.TempDir()
	s, err = Open(written, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "t", "k", "{}")
	s.Close()
	_, err = Open(written, Options{NodeID: "n2"})
	wantClass(t, "open a directory with writes and a made-up id as n2", err, fault.Config)
}

// TestNodeIDChecked: a node id that cannot name the node's objects in the
// backends is refused, given (as cairn import gives it) or stored.
func TestNodeIDChecked(t *testing.T) {
	long := strings.Repeat("n", MaxNodeID+1)
	_, err := Open(t.TempDir(), Options{NodeID: long})
	wantClass(t, "open with a node id too long", err, fault.Config)
	_, err = Open(t.TempDir(), Options{NodeID: "a b"})
	wantClass(t, "open with a node id with a space", err, fault.Config)

	dir := t.TempDir()
	s, err := Open(dir, Options{NodeID: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Identity()
	s.Close()
	id.NodeID = long
	if err := writeIdentity(dir, id); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{})
	wantClass(t, "open a directory whose stored node id is too long", err, fault.Config)
	if err == nil || !strings.Contains(err.Error(), "has the node id") {
		t.Errorf("the refusal does not name the stored id: %v", err)
	}
}

// TestLostDatabaseRefused: a directory whose identity says it had a
// database, but whose Pebble database is gone (its MANIFEST marker, or the
// whole pebble/), is refused as corrupt, and the tables and logs left are
// not deleted: Pebble would otherwise make a new, empty database over them.
func TestLostDatabaseRefused(t *testing.T) {
	for _, lose := range []string{"marker.manifest.*", "."} {
		dir := t.TempDir()
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			mustPut(t, s, "t", fmt.Sprint("k", i), "{}")
		}
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		pdir := filepath.Join(dir, "pebble")
		victims, _ := filepath.Glob(filepath.Join(pdir, lose))
		if len(victims) == 0 {
			t.Fatalf("nothing matches %s", lose)
		}
		for _, v := range victims {
			if err := os.RemoveAll(v); err != nil {
				t.Fatal(err)
			}
		}
		before, _ := filepath.Glob(filepath.Join(pdir, "*.sst"))
		_, err = Open(dir, Options{})
		wantClass(t, "open without "+lose, err, fault.Corruption)
		if !strings.Contains(err.Error(), "no Pebble database") {
			t.Errorf("open without %s: %v", lose, err)
		}
		if after, _ := filepath.Glob(filepath.Join(pdir, "*.sst")); len(after) != len(before) {
			t.Errorf("open without %s: %d tables before, %d after", lose, len(before), len(after))
		}
	}
}

func TestLockInProcess(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	_, err := Open(dir, Options{})
	wantClass(t, "second Open", err, fault.Config)
	if !strings.Contains(err.Error(), "is in use by another process") || !errors.Is(err, ErrLocked) {
		t.Fatalf("error %q does not say the directory is in use (ErrLocked)", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	openT(t, dir, Options{}) // the lock was released
}

// TestLockOtherProcess runs a second process against an open directory; it
// must fail fast with the clear error.
func TestLockOtherProcess(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir, Options{})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envLockChild+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "LOCKED: ") || !strings.Contains(string(out), "in use by another process") {
		t.Fatalf("child output %q", out)
	}
}

// lockChild is the second process of TestLockOtherProcess: exit 0 if Open
// fails with the expected error.
func lockChild(dir string) int {
	s, err := Open(dir, Options{})
	if err == nil {
		s.Close()
		fmt.Println("OPENED: the lock did not hold")
		return 1
	}
	if !errors.Is(err, fault.ErrConfig) {
		fmt.Println("WRONG CLASS:", err)
		return 1
	}
	fmt.Println("LOCKED:", err)
	return 0
}

func TestBufferedDurability(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Durability: Buffered})
	if err != nil {
		t.Fatal(err)
	}
	r := mustPut(t, s, "t", "k", "{}")
	if err := s.Close(); err != nil { // a clean close flushes the log
		t.Fatal(err)
	}
	s = openT(t, dir, Options{})
	if got, err := s.Get(bg, "t", "k"); err != nil || got.ETag != r.ETag {
		t.Fatalf("after clean close: %+v, %v", got, err)
	}
	if Buffered.String() != "buffered" || Sync.String() != "sync" {
		t.Fatal("durability names")
	}
}

// TestOpenCorruptStore: a damaged manifest (the file that lists the
// database's tables) is found at Open and reported as corruption, so the
// node refuses to start instead of serving from part of its data.
func TestOpenCorruptStore(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	mustPut(t, s, "t", "k", `{}`)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.CorruptManifest(t, dir)
	_, err := Open(dir, Options{})
	wantClass(t, "Open of a store with a damaged manifest", err, fault.Corruption)
	t.Log(err)
}

// TestSyncStateRidesTheNextSync: a sync-state row is not synced on its
// own (an upload does not wait for a sync of its base), and the next
// durable write makes it durable with itself. A crash of the machine is a
// crash clone of Pebble's file system: only what was synced survives.
func TestSyncStateRidesTheNextSync(t *testing.T) {
	dir := t.TempDir()
	mem := vfs.NewCrashableMem()
	s := openT(t, dir, Options{FS: mem})
	rec, err := s.Put(bg, "t", "a", []byte(`{"n":1}`), doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutSyncState("b", "t", "a", SyncState{Base: rec.Version, RemoteETag: "e1"}); err != nil {
		t.Fatal(err)
	}
	beforeSync := mem.CrashClone(vfs.CrashCloneCfg{})
	if _, err := s.Put(bg, "t", "b", []byte(`{"n":2}`), doc.Precondition{}); err != nil {
		t.Fatal(err)
	}
	afterSync := mem.CrashClone(vfs.CrashCloneCfg{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		fs       *vfs.MemFS
		wantSync bool
		wantB    bool
	}{
		{"crash before the next durable write", beforeSync, false, false},
		{"crash after it", afterSync, true, true},
	} {
		s := openT(t, dir, Options{FS: c.fs})
		if _, err := s.Get(bg, "t", "a"); err != nil {
			t.Errorf("%s: the acknowledged document a: %v", c.name, err)
		}
		_, err := s.Get(bg, "t", "b")
		if gotB := err == nil; gotB != c.wantB {
			t.Errorf("%s: document b present %v, want %v (%v)", c.name, gotB, c.wantB, err)
		}
		st, ok, err := s.SyncState("b", "t", "a")
		if err != nil || ok != c.wantSync || (ok && st.RemoteETag != "e1") {
			t.Errorf("%s: sync state of a: %+v, %v, %v; want present %v", c.name, st, ok, err, c.wantSync)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDamagedTableReported: a damaged table met on a read is handed to
// Options.OnFatal as a corruption, where Pebble's own logger would end the
// process with no diagnosis, and the read fails.
func TestDamagedTableReported(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		mustPut(t, s, "t", fmt.Sprintf("k%04d", i), `{"pad":"`+strings.Repeat("x", 100)+`"}`)
	}
	tables := flushAndClose(t, s, dir)
	for _, name := range tables {
		fi, err := os.Stat(name)
		if err != nil || fi.Size() < 64<<10 {
			continue // not the documents' table
		}
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte(strings.Repeat("\xff", 64)), fi.Size()/3) // inside its data blocks
		f.Close()
	}
	var got []error
	s, err = Open(dir, Options{OnFatal: func(err error) { got = append(got, err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var readErr error
	for i := range 2000 {
		if _, err := s.Get(bg, "t", fmt.Sprintf("k%04d", i)); err != nil {
			readErr = err
			break
		}
	}
	if readErr == nil || len(got) == 0 {
		t.Fatalf("reads of a damaged table: %v, OnFatal got %v; want a failed read and OnFatal called", readErr, got)
	}
	if fault.ClassOf(got[0]) != fault.Corruption || !strings.Contains(got[0].Error(), "corruption") {
		t.Errorf("OnFatal got %v (class %v), want a corruption", got[0], fault.ClassOf(got[0]))
	}
	s.Close()

	// Without OnFatal (an export, an import) the read fails with the
	// corruption, where Pebble's logger would panic the process.
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var listErr error
	for _, err := range ro.List(bg, "t", ListOptions{}) {
		if err != nil {
			listErr = err
			break
		}
	}
	if fault.ClassOf(listErr) != fault.Corruption || strings.Contains(fmt.Sprint(listErr), "carrier") {
		t.Errorf("listing a damaged table without OnFatal: %v (class %v), want a corruption error without Pebble's bookkeeping", listErr, fault.ClassOf(listErr))
	}
}

// TestDamagedLogRefused: damage in the middle of the write-ahead log, with
// acknowledged writes after it, is corruption, not the torn end of a log a
// crash leaves: Open refuses the store, naming it, and leaves the log as
// it was, instead of replaying the writes before the damage, silently
// dropping those after it and deleting the evidence.
func TestDamagedLogRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	for i := range 300 {
		mustPut(t, s, "t", fmt.Sprintf("w%04d", i), `{"pad":"`+strings.Repeat("x", 200)+`"}`)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "pebble", "*.log"))
	var wal string
	for _, name := range logs {
		if fi, err := os.Stat(name); err == nil && fi.Size() > 80<<10 {
			wal = name
		}
	}
	if wal == "" {
		t.Fatalf("no log holds the writes: %v", logs)
	}

	f, err := os.OpenFile(wal, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("\xff\xff\xff\xff"), 40000) // in the second 32 KiB block
	f.Close()
	before, _ := os.ReadFile(wal)

	_, err = Open(dir, Options{})
	wantClass(t, "Open of a store with a damaged log", err, fault.Corruption)
	if after, rerr := os.ReadFile(wal); rerr != nil || string(after) != string(before) {
		t.Errorf("the damaged log was changed or removed by the refused Open: %v", rerr)
	}
	t.Log(err)
}

// TestReadOnlyOpen: a store opened ReadOnly reads what a crash left (the
// writes only in the log included) and changes nothing in the directory:
// no file is created, rewritten or removed, the format is not upgraded,
// writes fail; a running store's lock is honoured, and a directory without
// a lock file is read without one.
func TestReadOnlyOpen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	for i := range 50 {
		mustPut(t, s, "t", fmt.Sprintf("k%02d", i), fmt.Sprintf(`{"i":%d}`, i))
	}
	if _, err := Open(dir, Options{ReadOnly: true}); !errors.Is(err, ErrLocked) {
		t.Fatalf("ReadOnly open of a store in use: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	listing := func() string {
		var b strings.Builder
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil {
				fmt.Fprintf(&b, "%s %d %v\n", p, fi.Size(), fi.ModTime().UnixNano())
			}
			return err
		})
		return b.String()
	}
	for _, withLock := range []bool{true, false} {
		if !withLock {
			os.Remove(filepath.Join(dir, "LOCK"))
		}
		before := listing()
		r, err := Open(dir, Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("ReadOnly open (lock file %v): %v", withLock, err)
		}
		n := 0
		for _, err := range r.List(bg, "t", ListOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 50 {
			t.Errorf("ReadOnly store lists %d documents, want 50", n)
		}
		if _, err := r.Put(bg, "t", "new", []byte(`{}`), doc.Precondition{}); err == nil {
			t.Error("a write to a ReadOnly store succeeded")
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if after := listing(); after != before {
			t.Errorf("ReadOnly open and close (lock file %v) changed the directory:\nbefore\n%s\nafter\n%s", withLock, before, after)
		}
	}
}

// TestMissingTableIsCorruption: a table the manifest lists but the
// directory lacks (a copy taken while the node ran) is damage, reported as
// corruption (runbook 15), not an I/O error.
func TestMissingTableIsCorruption(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	mustPut(t, s, "t", "k", `{}`)
	for _, tb := range flushAndClose(t, s, dir) {
		os.Remove(tb)
	}
	_, err := Open(dir, Options{})
	wantClass(t, "Open of a store missing a table", err, fault.Corruption)
	t.Log(err)
}

// TestTruncatedTableIsCorruption: a table shorter than its manifest says
// (a partial copy, a disk that filled) is damage, as a missing one is.
func TestTruncatedTableIsCorruption(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	mustPut(t, s, "t", "k", `{}`)
	for _, tb := range flushAndClose(t, s, dir) {
		fi, err := os.Stat(tb)
		if err != nil {
			t.Fatal(err)
		}
		os.Truncate(tb, fi.Size()/2)
	}
	_, err := Open(dir, Options{})
	wantClass(t, "Open of a store with a table cut short", err, fault.Corruption)
}

// flushAndClose flushes s's memtable to tables, closes s and returns the
// tables' paths in dir.
func flushAndClose(t *testing.T, s *Store, dir string) []string {
	t.Helper()
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	tables, _ := filepath.Glob(filepath.Join(dir, "pebble", "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table flushed")
	}
	return tables
}
