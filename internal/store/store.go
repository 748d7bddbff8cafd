package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/logevery"
)

// Durability says when a write is acknowledged.
type Durability int

const (
	// Sync, the default, acknowledges a write only after the write-ahead log
	// holding it was fsynced. Concurrent writers share one fsync.
	Sync Durability = iota
	// Buffered acknowledges a write once it is in Pebble's write-ahead-log
	// buffer, without waiting for an fsync. Pebble's log writer hands the
	// buffer to the OS in the background, moments later: a crash of the
	// machine, and also of the process in that short window, can lose
	// acknowledged writes. Choose it only by name, for data that can be
	// rebuilt.
	Buffered
)

func (d Durability) String() string {
	if d == Buffered {
		return "buffered"
	}
	return "sync"
}

// Limits.
const (
	// MaxBody is the largest body the store accepts. Callers enforce their
	// own, smaller limit (the server's default is 1 MiB); this one only stops
	// a bug from writing a huge value into the log.
	MaxBody = 16 << 20
	// DefaultMaxBatch is the default for Options.MaxBatch.
	DefaultMaxBatch = 512
	// maxBatchBytes stops a group from growing past this many body bytes, so
	// a burst of large bodies does not build one enormous batch.
	maxBatchBytes = 32 << 20
)

// Options configure Open. The zero value is a durable store with a random
// node id.
type Options struct {
	// ReadOnly opens an existing store to read it and changes nothing in
	// its directory: no lock file, identity, log or manifest is created or
	// rewritten, and the format is not upgraded (cairn export reads a copy
	// kept aside, or a read-only snapshot, this way). A running node's lock
	// is still honoured. Writes fail.
	ReadOnly bool
	// NodeID names the node. It is stored with the identity on first open;
	// a later open with a different non-empty NodeID fails. Empty means the
	// stored one, or "node-<incarnation>" for a new directory.
	NodeID string
	// Durability is Sync unless Buffered is named.
	Durability Durability
	// Wall is the hybrid logical clock's physical clock; nil is time.Now.
	Wall func() time.Time
	// Clock, if set, is the hybrid logical clock itself (Wall is then
	// unused): the caller keeps it to watch for wall clock jumps
	// (doc.Clock.Watch) and to read how far it runs ahead.
	Clock *doc.Clock
	// OnFail, if set, is called once, when the store fails (see ErrFailed),
	// with the error that failed it. It runs on the goroutine whose commit
	// failed (the syncer, before the failed group's writers are answered,
	// or a writer of sync state); it must be quick and must not call the
	// Store's methods.
	OnFail func(err error)
	// Logger receives Pebble's errors, at most one line a minute (a
	// failing flush is retried, and logged, many times a second); nil is
	// slog.Default().
	Logger *slog.Logger
	// OnFatal is called when Pebble gives up on one of its own goroutines
	// (a flush or compaction that met a damaged table, say), with the
	// error classified as the store's are (fault.Corruption for damage).
	// Pebble cannot go on then: OnFatal must not return (a node logs the
	// diagnosis and exits). Nil panics, as Pebble's own logger would exit.
	// A fatal error in a commit is not one: the store recovers it and
	// fails (OnFail).
	OnFatal func(err error)
	// FS is the file system Pebble uses, the fault-injection seam (wrap
	// vfs.Default with vfs/errorfs). nil is vfs.Default. The LOCK and
	// identity files always use the real file system: flock needs a real
	// descriptor.
	FS vfs.FS
	// OnCommit, if set, is called by the store's syncer goroutine after each
	// successful group commit with the number of writes in it and how long
	// the commit (including the fsync) took. It must be quick and must not
	// call the Store's write methods, which wait for the committer.
	OnCommit func(batchSize int, dur time.Duration)
	// MaxBatch caps how many writes share one commit; 0 is DefaultMaxBatch.
	MaxBatch int
	// Watcher, if set, is told of every committed write before its writer
	// is answered; it keeps a cache in front of the store linearizable.
	Watcher Watcher
	// Failpoint, if set, is called by the syncer at the crash points of a
	// group commit: "store.commit.before-sync" before the group is written
	// and fsynced, "store.commit.after-sync" once it is durable and before
	// any of its writers is answered. The chaos package's failpoints kill
	// the process there; nil (chaos off) costs one branch per group.
	Failpoint func(name string)
	// CacheSize is Pebble's block cache in bytes (the memtables are
	// charged to it; see pebbleOptions); 0 is DefaultCacheSize. A node
	// with a memory limit derives it from the limit (node.MemoryBudget).
	CacheSize int64
	// DiskReserve is the space the store keeps free on the data
	// directory's file system: writes are refused (ErrDiskLow) while less
	// is free, and taken again once space is freed (room.go says why). 0
	// is DefaultDiskReserve plus three memtables; negative turns it off.
	DiskReserve int64
	// freeSpace, if set, replaces the file system's measure of free space,
	// and roomEvery the interval of its measures (tests).
	freeSpace func(dir string) (int64, error)
	roomEvery time.Duration
	// MemTableSize is the size of one Pebble memtable; 0 is
	// DefaultMemTableSize. It must be well under CacheSize, which the
	// memtables are charged to.
	MemTableSize int64

	// KeyFilterBytes caps the in-memory filter of document keys that spares
	// a PUT creating a document its Pebble lookup (keyfilter.go): 0 is
	// DefaultKeyFilterBytes, negative turns the filter off. It is sized
	// for the documents present (10 bits each, at least 1.25 MiB) and
	// grows up to the cap; past twice the cap's capacity it is dropped.
	KeyFilterBytes int64

	onTake      func()              // test hook, see Store.onTake
	onBatch     func(*pebble.Batch) // test hook, see Store.onBatch
	onSettle    func(seq uint64)    // test hook, see Store.onSettle
	settleAfter time.Duration       // test switch: settleMarks' quiet time; 0 is defaultSettleAfter
	noLinger    bool                // benchmark switch: hand groups over without lingering
	filterMin   int64               // test switch: the smallest filter's capacity (keys); 0 is filterMinKeys
	maxOverlay  int                 // test switch: prune the overlay beyond this many entries; 0 is maxOverlay
	recentKeys  int                 // test switch: the bound of recentStates; 0 is recentKeys
	filterHook  func(stage string)  // test hook: the filter's progress ("starting", "activated", "published", "grown", "dropped")
}

// Watcher is told of every write once its group commit is durable, before
// any writer of the group is answered. Committed is called by the syncer
// goroutine, one write at a time in commit order; it must be quick and must
// not call the Store's methods. The Record and its Body must not be
// modified. If a commit fails, Committed is not called and the store fails
// (see ErrFailed).
//
// Why here and not after Put returns: every answer that depends on a write
// (its own reply, a 412 or "not found" decided against it) leaves the store
// only after this call. A cache updated by the writer after Put returned
// would, in between, serve the old version to one client while another
// already holds an answer based on the new one: see docs.Service and its
// linearizability test, which finds that anomaly within a second.
type Watcher interface {
	Committed(rec *Record)
}

// Errors that callers may test for with errors.Is. Both reach callers
// wrapped in a *fault.Error with the operation, tenant and key.
var (
	// ErrClosed: the store was closed. Class fault.Transient: it happens
	// during shutdown, and the request may succeed against the restarted
	// node.
	ErrClosed = errors.New("store: closed")
	// ErrFailed: an earlier write to the log failed. The store then refuses
	// every read and write, because Pebble may already show the failed
	// batch to readers although it was never acknowledged, and because a
	// failed fsync cannot be retried safely (the kernel may have dropped the
	// dirty pages). Close and reopen the store to recover: recovery replays
	// exactly what reached the log. The class is that of the original
	// error (Exhausted for ENOSPC, for example).
	ErrFailed = errors.New("store: failed after a write error; close and reopen it to recover")
	// ErrLocked: Open found the data directory locked by another process
	// (or another Open in this one). Class fault.Config.
	ErrLocked = errors.New("in use by another process")
)

// Store is the durable local document store. It is safe for concurrent use.
type Store struct {
	dir   string
	db    *pebble.DB
	lock  *dirLock
	id    Identity
	clock *doc.Clock
	wopts *pebble.WriteOptions

	onCommit func(int, time.Duration)
	onFail   func(error)
	watcher  Watcher
	maxBatch int

	reqs     chan *request // writers → committer; closed by Close once no writer is sending
	toSync   chan *group   // committer → syncer; buffered(1), sent only when the syncer is idle; closed by the committer on exit
	syncIdle chan struct{} // syncer → committer after answering each group; buffered(1)
	done     chan struct{} // closed by the syncer when it returns, after the committer

	// Owned by the committer goroutine after Open returns.
	seq         uint64              // highest Seq staged
	hlcMark     doc.Timestamp       // highest HLC staged (handed out or observed)
	overlay     map[string]*current // tenant NUL key → latest staged state, until committed and pruned
	failAt      func(string)        // Options.Failpoint
	prunedAt    uint64              // the committed mark of the last overlay prune (see prepare)
	maxOverlay  int                 // maxOverlay, or Options.maxOverlay
	scratch     []byte              // encoding buffer for values the batch copies
	onTake      func()              // test hook: called for each request taken
	onBatch     func(*pebble.Batch) // test hook: called with each group's batch before it is committed
	onSettle    func(seq uint64)    // test hook: called on the syncer after settleMarks committed a bulk group's marks
	settleAfter time.Duration       // settleMarks' quiet time after a bulk group
	bulkMarks   int                 // bulk groups' marks staged since the last deletion of them (stageMarks); the syncer's, then Close's
	noLinger    bool                // see Options.noLinger

	committed  atomic.Uint64 // highest Seq committed; written by the syncer, read by the committer and by readers (waitDurable)
	lastCommit atomic.Int64  // duration of the last commit in ns; written by the syncer
	inflight   atomic.Int64  // writers between sending a request and getting its answer
	expected   atomic.Int64  // the last group's single writers, expected back with another write (expectBack)
	returning  atomic.Int64  // those of them not yet back
	noExpect   atomic.Int32  // groups left during which the syncer expects no writer back (expectBack)
	missScore  atomic.Int64  // recent readCurrent misses minus hits, in ±missScoreMax
	recent     *recentStates // committed states of recently written keys; written by the syncer
	// durable is closed, and replaced, by the syncer after each group's
	// commit succeeds or fails: readers that met a version not yet durable
	// wait on it (waitDurable).
	durable atomic.Pointer[chan struct{}]

	// Sync-state write tracking, for SyncGen/SyncUnchanged: syncWriting
	// counts writes of sync-state rows in progress (raised before the write
	// can be visible), syncGen counts those finished (bumped after it is).
	syncWriting atomic.Int64
	syncGen     atomic.Uint64

	mu     sync.Mutex // guards closed, active and failed; idle waits on it
	closed bool       // Close has begun: no new operations
	active int        // operations in progress (readers and writers)
	failed error      // non-nil after a write to the log failed; sticky
	idle   sync.Cond  // signalled when active drops to 0 after closed

	// hasFailed is set with failed (under mu), so that failedErr need not
	// lock mu while there is no failure.
	hasFailed atomic.Bool

	// The key filter (keyfilter.go). filter is the published one, nil
	// while none is ready or after it was dropped; fset, owned by the
	// committer, is the one it adds every staged key to (published or
	// being built), nil when there is none.
	filter     atomic.Pointer[filterSet]
	fset       *filterSet
	filterCh   chan filterMsg // buildFilter → committer
	filterStop context.CancelFunc
	filterDone chan struct{} // closed when buildFilter returns
	filterMax  int64
	filterMin  int64
	filterHook func(string)

	room *room // nil when no reserve is kept

	readOnly bool // Options.ReadOnly
}

// Open opens (creating if needed) the store in dir:
//
//	dir/LOCK           flock'ed while open; a second Open fails fast
//	dir/identity.json  node id and incarnation
//	dir/pebble/        the Pebble database
//
// Errors are of class fault.Config (directory in use, unreadable, wrong
// node), fault.Corruption (damaged identity or database) or the class of the
// underlying I/O error.
func Open(dir string, opts Options) (*Store, error) {
	const op = "store.open"
	if opts.ReadOnly {
		opts.KeyFilterBytes = -1 // nothing to filter: no writes
	} else if err := mkdirAll(dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir, opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if err := roomToOpen(dir, opts); err != nil {
			lock.release()
			return nil, fault.E(fault.Exhausted, fault.Context{Op: op}, err)
		}
	}
	s, err := open(dir, lock, opts)
	if err != nil {
		lock.release()
		return nil, fault.E(fault.Unknown, fault.Context{Op: op}, err)
	}
	s.committed.Store(s.seq)
	durable := make(chan struct{})
	s.durable.Store(&durable)
	reserve := opts.DiskReserve
	if reserve == 0 {
		reserve = DefaultDiskReserve + 3*cmp.Or(opts.MemTableSize, DefaultMemTableSize)
	}
	s.room = newRoom(dir, reserve, opts.measureFree(), opts.roomEvery, cmp.Or(opts.Logger, slog.Default()))
	ctx, stop := context.WithCancel(context.Background())
	s.filterStop, s.filterDone = stop, make(chan struct{})
	go s.run()
	go s.syncLoop()
	if s.filterMax > 0 {
		go s.buildFilter(ctx, int64(s.seq))
	} else {
		close(s.filterDone)
	}
	return s, nil
}

func open(dir string, lock *dirLock, opts Options) (*Store, error) {
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	pdir := filepath.Join(dir, "pebble")
	existing, _ := fs.List(pdir) // an error means absent or unreadable; pebble.Open reports the latter
	var id Identity
	var created, adopt bool
	var err error
	if opts.ReadOnly {
		// The identity names the node that writes; a reader needs none
		// and writes none.
		if len(existing) == 0 {
			return nil, fault.New(fault.Config, fault.Context{}, fmt.Sprintf("%s holds no Pebble database to read", pdir))
		}
	} else if id, created, adopt, err = loadIdentity(dir, opts.NodeID, len(existing) > 0); err != nil {
		return nil, err
	}
	po := pebbleOptions(fs, opts.CacheSize, opts.MemTableSize)
	po.Logger = quietLogger{onFatal: opts.OnFatal, errs: &pebbleErrors{log: cmp.Or(opts.Logger, slog.Default()), every: logevery.Limiter{Period: pebbleErrorsEvery}}}
	var opened atomic.Pointer[Store] // for the listener, which Pebble may call from Open on
	po.EventListener = &pebble.EventListener{
		// A flush or compaction that failed for want of space is retried
		// by Pebble while writes go on to the log: the store fails as a
		// log write that runs out of space does, so that writes answer
		// 503, readiness drops and the disk-full alert fires, instead of
		// writes going on until the log's disk is full too.
		BackgroundError: func(err error) {
			if s := opened.Load(); s != nil && classify(err) == fault.Exhausted {
				s.fail(err)
			}
		},
	}
	// Pebble's own answer to a damaged block, on whichever goroutine met
	// it, is its logger's Fatalf with a description (no error). A node
	// stops with a diagnosis (OnFatal); without one (an export, an import)
	// the read that met the block fails with Pebble's corruption error,
	// which the command reports, instead of a panic.
	po.EventListener.DataCorruption = func(pebble.DataCorruptionInfo) {}
	if opts.OnFatal != nil {
		po.EventListener.DataCorruption = func(info pebble.DataCorruptionInfo) {
			opts.OnFatal(fault.New(fault.Corruption, fault.Context{Op: "store.pebble"}, info.String()))
		}
	}
	// A directory with an identity had a database: Pebble must not make a
	// new, empty one in its place, which it would do (deleting the tables
	// and logs it finds) when pebble/ or its MANIFEST marker is gone, and
	// the node would serve nothing as if it had always been empty.
	po.ErrorIfNotExists = !created
	po.ReadOnly = opts.ReadOnly
	if opts.ReadOnly {
		po.FormatMajorVersion = pebble.FormatDefault // the one on disk: no upgrade
		// Pebble locks its directory by opening pebble/LOCK for writing,
		// even read-only; the store's own lock (dir/LOCK) is what keeps
		// a reader from a running node.
		po.FS = noLockFS{po.FS}
	}
	db, err := openPebble(pdir, po)
	if errors.Is(err, pebble.ErrDBDoesNotExist) {
		return nil, fault.New(fault.Corruption, fault.Context{}, fmt.Sprintf(
			"%s has its %s but no Pebble database in %s (pebble/ or its marker.manifest.* file is gone): the documents it held are not there",
			dir, identityFile, pdir))
	}
	if err != nil {
		class := classify(err)
		if errors.Is(err, iofs.ErrNotExist) || strings.Contains(err.Error(), "object size mismatch") {
			// A table or log the manifest lists is gone (a copy taken
			// while the node ran, a file deleted by hand), or is not the
			// size the manifest says (cut short by a partial copy or a
			// full disk; Pebble's consistency check says so only in its
			// message): the database is damaged, not absent, which
			// ErrDBDoesNotExist says.
			class = fault.Corruption
		}
		return nil, fault.E(class, fault.Context{}, fmt.Errorf("open pebble in %s: %w", pdir, err))
	}
	s := &Store{
		dir: dir, db: db, lock: lock, id: id, readOnly: opts.ReadOnly,
		clock:    opts.Clock,
		wopts:    pebble.Sync,
		onCommit: opts.OnCommit,
		onFail:   opts.OnFail,
		watcher:  opts.Watcher,
		onTake:   opts.onTake, onBatch: opts.onBatch, onSettle: opts.onSettle, settleAfter: cmp.Or(opts.settleAfter, defaultSettleAfter),
		failAt:   opts.Failpoint,
		noLinger: opts.noLinger,
		maxBatch: opts.MaxBatch,
		toSync:   make(chan *group, 1),
		syncIdle: make(chan struct{}, 1),
		done:     make(chan struct{}),
		overlay:  make(map[string]*current),
		recent:   newRecentStates(cmp.Or(opts.recentKeys, recentKeys)),

		filterCh:   make(chan filterMsg),
		filterMax:  opts.KeyFilterBytes,
		filterMin:  opts.filterMin,
		filterHook: opts.filterHook,
	}
	opened.Store(s)
	if s.clock == nil {
		s.clock = doc.NewClock(opts.Wall)
	}
	switch {
	case s.filterMax == 0:
		s.filterMax = DefaultKeyFilterBytes
	case s.filterMax < 0:
		s.filterMax = 0
	}
	if s.maxOverlay = opts.maxOverlay; s.maxOverlay <= 0 {
		s.maxOverlay = maxOverlay
	}
	if s.filterMin <= 0 {
		s.filterMin = filterMinKeys
	}
	if opts.Durability == Buffered {
		s.wopts = pebble.NoSync
	}
	if s.maxBatch <= 0 {
		s.maxBatch = DefaultMaxBatch
	}
	s.reqs = make(chan *request, s.maxBatch)
	s.idle.L = &s.mu
	if err := s.loadMarks(); err != nil {
		db.Close()
		return nil, err
	}
	if adopt {
		if s.id, err = adoptID(dir, id, opts.NodeID, s.seq); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// DefaultCacheSize is Pebble's block cache size when Options.CacheSize is 0.
const DefaultCacheSize = 32 << 20

// DefaultMemTableSize is a Pebble memtable's size when
// Options.MemTableSize is 0; pebbleOptions says why 8 MiB.
const DefaultMemTableSize = 8 << 20

// pebbleOptions tunes Pebble for this workload. Every write first looks up
// the key's current version, and most new keys are absent: without bloom
// filters each such miss reads a data block of every level. The memtable
// (two while one flushes) and the block cache are most of a node's memory
// beside the document cache, so both are kept small enough for a bulk
// ingest to run in a bounded footprint.
//
// Pebble charges its memtables to the block cache (Cache.Reserve): the
// cache holds blocks only in CacheSize minus the memtables' size. A
// memtable as large as the cache leaves it holding nothing, so every lookup
// of a new key would read and checksum the tables' filter and index blocks
// from disk. An 8 MiB memtable (two while one flushes) leaves a 32 MiB
// cache 16–24 MiB, which keeps those blocks, and lowers the peak memory
// rather than raising it.
func pebbleOptions(fs vfs.FS, cacheSize, memTableSize int64) *pebble.Options {
	if cacheSize <= 0 {
		cacheSize = DefaultCacheSize
	}
	if memTableSize <= 0 {
		memTableSize = DefaultMemTableSize
	}
	o := &pebble.Options{
		FS:                 fs,
		Logger:             quietLogger{},
		MemTableSize:       uint64(memTableSize),
		CacheSize:          cacheSize,
		FormatMajorVersion: formatVersion, // see formatVersion
	}
	o.Experimental.SpanPolicyFunc = splitTables
	o.Levels[0].FilterPolicy = bloom.FilterPolicy(10) // later levels inherit it
	// Compress only the last level. The levels above it hold a small share
	// of the data and are rewritten by compactions soon after they are
	// written, so compressing them mostly costs CPU (docs/performance.md,
	// durable store Put).
	for i := range len(o.Levels) - 1 {
		o.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	o.Levels[len(o.Levels)-1].Compression = func() *sstable.CompressionProfile { return sstable.SnappyCompression }
	return o
}

// noLockFS is a file system whose Lock takes no lock and touches no file:
// for a read-only open, which Pebble would otherwise lock by opening its
// LOCK file for writing.
type noLockFS struct{ vfs.FS }

func (noLockFS) Lock(string) (io.Closer, error) { return io.NopCloser(nil), nil }

// formatVersion is the Pebble format the store creates and upgrades to
// (one way: a build whose Pebble predates it cannot open the store after).
// From FormatWALSyncChunks on, the log records how far each sync reached,
// so damage in the middle of it, with acknowledged writes after, can be
// told from the torn end a crash leaves and refused, where an older format
// takes any bad record for the end and drops every write after it; the
// check is partial (docs/design/store.md, "Pebble's format"). Named, not
// FormatNewest, so that a newer Pebble does not upgrade stores by itself;
// TableFormatV6 adds a checksum to every table's footer.
const formatVersion = pebble.FormatTableFormatV6

// openPebble opens the database in dir at formatVersion. Pebble creates a
// database, and starts the log of an open, at the format it finds, then
// upgrades the format: the log of a new or upgraded database's first run
// would lack the sync offsets that tell damage from a torn end (see
// pebbleOptions), until its first memtable flush. Such a database is
// closed and opened again at once, which starts a new log at the new
// format; the open is cheap, the log holding nothing yet.
func openPebble(dir string, o *pebble.Options) (*pebble.DB, error) {
	older := false
	if !o.ReadOnly {
		desc, err := pebble.Peek(dir, o.FS)
		older = err != nil || !desc.Exists || desc.FormatMajorVersion < formatVersion
	}
	db, err := pebble.Open(dir, o)
	if err != nil || !older {
		return db, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	return pebble.Open(dir, o)
}

// splitTables ends every sstable that a flush or compaction writes at the
// end of its first key's table (keys.go: the first byte names the table), so
// that no sstable holds rows of two tables.
//
// Why: every group commit writes rows of at least three tables (document
// rows, change-log entries, the high-water marks), so without it every
// flushed sstable spans from the change log past the documents to the
// metadata, and overlaps all the documents below it, whatever their keys.
// Each compaction out of L0 then rewrites the whole document table of the
// level below, which makes a bulk load's compaction work grow with the
// square of the store's size. Split by table, an sstable of change-log
// entries (whose keys only grow) or of documents loaded in key order
// overlaps nothing below and moves down a level without being rewritten.
func splitTables(start []byte) (pebble.SpanPolicy, []byte, error) {
	if len(start) == 0 || start[0] == 0xff {
		return pebble.SpanPolicy{}, nil, nil
	}
	return pebble.SpanPolicy{}, []byte{start[0] + 1}, nil
}

// loadMarks restores the Seq and HLC high-water marks: metaSeq and metaHLC,
// or the last bulk group's marks if a bulk group committed after them
// (stageMarks), then folds the bulk marks into metaSeq and metaHLC
// (foldMarks). Both kinds only grow, in commit order, so the larger of each
// is the mark. Observing the HLC mark keeps the clock monotonic across a
// restart even if the wall clock stepped back while the node was down.
func (s *Store) loadMarks() error {
	for _, m := range []struct {
		key []byte
		dst *uint64
	}{{metaSeq, &s.seq}, {metaHLC, (*uint64)(&s.hlcMark)}} {
		val, closer, err := s.db.Get(m.key)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return fault.E(classify(err), fault.Context{}, err)
		}
		*m.dst, err = decodeUint64(val)
		closer.Close()
		if err != nil {
			return fault.E(fault.Corruption, fault.Context{}, err)
		}
	}
	seq, hlc, found, err := s.lastBulkMarks()
	if err != nil {
		return err
	}
	s.seq, s.hlcMark = max(s.seq, seq), max(s.hlcMark, doc.Timestamp(hlc))
	s.clock.Observe(s.hlcMark)
	if found && !s.readOnly {
		return s.foldMarks()
	}
	return nil
}

// lastBulkMarks returns the marks of the last bulk group, if any.
func (s *Store) lastBulkMarks() (seq, hlc uint64, found bool, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: metaMark, UpperBound: metaMarkEnd})
	if err != nil {
		return 0, 0, false, fault.E(classify(err), fault.Context{}, err)
	}
	defer it.Close()
	if !it.Last() {
		if err := it.Error(); err != nil {
			return 0, 0, false, fault.E(classify(err), fault.Context{}, err)
		}
		return 0, 0, false, nil
	}
	k := it.Key()
	if len(k) != len(metaMark)+8 {
		return 0, 0, false, fault.E(fault.Corruption, fault.Context{}, fmt.Errorf("%w: bulk marks key %x", errBadValue, k))
	}
	seq = binary.BigEndian.Uint64(k[len(metaMark):])
	if hlc, err = decodeUint64(it.Value()); err != nil {
		return 0, 0, false, fault.E(fault.Corruption, fault.Context{}, err)
	}
	return seq, hlc, true, nil
}

// foldMarks writes the marks into metaSeq and metaHLC and deletes every
// bulk group's marks, in one synced batch: the bulk marks are one key per
// bulk group, and a build that knows only metaSeq and metaHLC reads the
// right marks from a directory this one opened or closed. It runs while no
// group is being committed (at Open, before the committer starts, and at
// Close, after it stopped).
func (s *Store) foldMarks() error {
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(metaHLC, encodeUint64(uint64(s.hlcMark)), nil)
	_ = b.Set(metaSeq, encodeUint64(s.seq), nil)
	_ = b.DeleteRange(metaMark, metaMarkEnd, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fault.E(classify(err), fault.Context{}, fmt.Errorf("fold the bulk marks: %w", err))
	}
	return nil
}

// Identity returns the node's identity.
func (s *Store) Identity() Identity { return s.id }

// Close stops accepting operations, waits for those in progress (queued
// writes are committed and answered; running List and Changes loops finish),
// stops the committer, closes Pebble and releases the directory lock. Do not
// call it from inside a List or Changes loop: it would wait for itself.
// A second Close returns an error wrapping ErrClosed.
func (s *Store) Close() error {
	const op = "store.close"
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fault.E(fault.Transient, fault.Context{Op: op}, ErrClosed)
	}
	s.closed = true
	for s.active > 0 {
		s.idle.Wait()
	}
	failed := s.failed
	s.mu.Unlock()
	s.filterStop()
	<-s.filterDone // before the committer stops: buildFilter may be waiting for it
	close(s.reqs)  // no sender is left: every one holds active while sending
	<-s.done       // the committer handed over its last group, the syncer answered it
	var err error
	if s.bulkMarks > 0 && s.failedErr() == nil {
		err = s.foldMarks()
	}
	err = errors.Join(err, s.db.Close())
	s.room.close()
	if failed != nil && err != nil {
		// Pebble reports the same log error again; the caller has seen it.
		err = nil
	}
	err = errors.Join(err, s.lock.release())
	if err != nil {
		return fault.E(classify(err), fault.Context{Op: op}, err)
	}
	return nil
}

// acquire registers an operation, or says why none may start.
func (s *Store) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.failed != nil:
		return s.failed
	}
	s.active++
	return nil
}

func (s *Store) release() {
	s.mu.Lock()
	s.active--
	if s.active == 0 && s.closed {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
}

// fail records that a write to the log failed; see ErrFailed.
func (s *Store) fail(cause error) {
	s.mu.Lock()
	first := s.failed == nil
	if first {
		// The message is what clients read in every 503 from now on: what
		// happened, without paths, and that retrying this node soon is no
		// use.
		msg := "the node's store failed after a write error and refuses every request until the node restarts"
		switch {
		case OutOfFiles(cause):
			msg = "the node ran out of open files (its limit, ulimit -n): its store failed and refuses every request until the node restarts"
		case classify(cause) == fault.Exhausted:
			msg = "the node's disk is full: its store failed and refuses every request until the node restarts with space freed"
		}
		s.failed = fault.WithRetryAfter(&fault.Error{Class: classify(cause), Msg: msg,
			Err: fmt.Errorf("%w (first error: %w)", ErrFailed, cause)}, failedRetryAfter)
		s.hasFailed.Store(true)
	}
	s.mu.Unlock()
	if first && s.onFail != nil {
		s.onFail(cause)
	}
}

// OutOfFiles reports whether err is the process's or the system's limit of
// open files (EMFILE, ENFILE): fault.Exhausted as a full disk is, but the
// cure is the limit, not space.
func OutOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// failedRetryAfter is the Retry-After of a failed store's refusals: it
// needs an operator and a restart, so clients should go elsewhere (its
// /readyz says so) rather than come back every second.
const failedRetryAfter = time.Minute

// classify maps Pebble's and the store's own errors to a class; anything
// else keeps the class fault.ClassOf finds (errno values, contexts).
// It lives here rather than in package fault so that fault's many importers
// do not link Pebble.
func classify(err error) fault.Class {
	switch {
	case errors.Is(err, ErrClosed), errors.Is(err, pebble.ErrClosed):
		return fault.Transient
	case errors.Is(err, errBadValue), pebble.IsCorruptionError(err):
		return fault.Corruption
	}
	return fault.ClassOf(err)
}

// wrap adds the operation context and class to err (nil stays nil).
func wrap(op, tenant, key string, err error) error {
	if err == nil {
		return nil
	}
	if pebble.ExtractDataCorruptionInfo(err) != nil {
		err = corruptionError{err}
	}
	return fault.E(classify(err), fault.Context{Op: op, Tenant: tenant, Key: key}, err)
}

// corruptionError is Pebble's error for a damaged block, whose message
// ends in a line of its own bookkeeping ("<corruption detail carrier>"),
// without that line.
type corruptionError struct{ err error }

func (e corruptionError) Error() string {
	msg, _, _ := strings.Cut(e.err.Error(), "\n<corruption detail carrier>")
	return msg
}

func (e corruptionError) Unwrap() error { return e.err }

// quietLogger drops Pebble's informational chatter and keeps its errors.
//
// Fatalf panics with a pebbleFatal instead of exiting. Pebble calls it when
// it cannot continue, and does not expect it to return: notably when a
// commit's log write or fsync fails (DB.Apply: "fatal commit error"). The
// store recovers that panic around its own commits (commitBatch), so the
// writers get an error and the store fails cleanly instead of the whole
// process exiting. A Fatalf on one of Pebble's background goroutines is
// handed to onFatal (Options.OnFatal), which ends the process with a
// diagnosis; without one, the panic ends it, as Pebble intends.
type quietLogger struct {
	onFatal func(error)
	errs    *pebbleErrors // nil: slog.Default(), unthinned
}

func (quietLogger) Infof(string, ...any) {}

func (l quietLogger) Errorf(format string, a ...any) {
	if l.errs == nil {
		slog.Error("store: pebble error", "err", fmt.Sprintf(format, a...))
		return
	}
	l.errs.write(fmt.Sprintf(format, a...))
}

// pebbleErrors writes Pebble's errors at most once a minute, the next line
// saying how many were not written ("suppressed").
type pebbleErrors struct {
	log   *slog.Logger
	every logevery.Limiter
}

const pebbleErrorsEvery = time.Minute

func (p *pebbleErrors) write(msg string) {
	ok, suppressed := p.every.Allow("pebble", time.Now())
	if !ok {
		return
	}
	args := []any{"err", msg}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	p.log.Error("store: pebble error", args...)
}

func (l quietLogger) Fatalf(format string, a ...any) {
	pf := pebbleFatal{msg: fmt.Sprintf(format, a...)}
	for _, x := range a {
		if err, ok := x.(error); ok && pf.cause == nil {
			pf.cause = err // Pebble formats with %v; keep the chain for classification
		}
	}
	if l.onFatal != nil && !inCommit() {
		l.onFatal(fault.E(classify(pf), fault.Context{Op: "store.pebble"}, pf))
	}
	panic(pf)
}

// inCommit reports whether the caller runs inside commitBatch, which
// recovers a Fatalf.
func inCommit() bool {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, ".(*Store).commitBatch") {
			return true
		}
		if !more {
			return false
		}
	}
}

// pebbleFatal is the panic value of quietLogger.Fatalf.
type pebbleFatal struct {
	msg   string
	cause error // the first error among the arguments, if any
}

func (p pebbleFatal) Error() string { return p.msg }
func (p pebbleFatal) Unwrap() error { return p.cause }

// commitBatch commits b with wo (s.wopts: the store's durability). A failure fails the
// store (see ErrFailed): Pebble's log is then unusable, and the batch may
// already be visible to readers.
func (s *Store) commitBatch(b *pebble.Batch, wo *pebble.WriteOptions) (err error) {
	defer func() {
		if r := recover(); r != nil {
			pf, ok := r.(pebbleFatal)
			if !ok {
				panic(r)
			}
			err = pf
		}
		if err != nil {
			s.fail(err)
		}
	}()
	return b.Commit(wo)
}
