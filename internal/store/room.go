package store

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/logevery"
)

// The store keeps part of its file system free, and refuses writes while
// less is free. Pebble cannot run out of space safely everywhere: when a
// full memtable hands over to a new log file, which it preallocates to 1.1
// times the memtable size, a failure to create that file makes it give up
// on the process (a panic that takes the node down with a stack trace,
// whatever its caller does). So the store stops taking writes before the
// disk gets there, answers them with a clear error, and takes them again
// once space is freed; reads go on.
//
// The reserve covers that log file, the flush of the memtable before it and
// a margin for compactions: DefaultDiskReserve plus three memtables. The
// free space is measured every roomEvery by a goroutine of the store; in
// between, each admitted write's bytes are taken from what was left over
// the reserve, so a burst cannot overrun it before the next measure.
type room struct {
	dir     string
	reserve int64
	free    func(dir string) (int64, error)
	log     *slog.Logger
	every   logevery.Limiter

	// slack is the free space over the reserve at the last measure, less
	// the bytes admitted since; negative while writes are refused.
	slack atomic.Int64
	// measured is the free space of the last measure.
	measured atomic.Int64

	stop chan struct{}
	done chan struct{}
}

// DefaultDiskReserve is the part of the reserve beyond three memtables.
const DefaultDiskReserve = 64 << 20

// roomEvery is how often the free space is measured.
const roomEvery = 250 * time.Millisecond

// ErrDiskLow: the file system of the data directory has less free space
// than the store's reserve; the write was not made. Class fault.Exhausted.
var ErrDiskLow = errors.New("disk nearly full")

// newRoom starts measuring the free space of dir, or returns nil when the
// reserve is off (reserve < 0) or the free space cannot be measured here.
func newRoom(dir string, reserve int64, free func(string) (int64, error), every time.Duration, log *slog.Logger) *room {
	if reserve < 0 {
		return nil
	}
	if _, err := free(dir); err != nil {
		return nil
	}
	r := &room{dir: dir, reserve: reserve, free: free, log: log, every: logevery.Limiter{Period: time.Minute},
		stop: make(chan struct{}), done: make(chan struct{})}
	r.measure()
	go r.run(cmp.Or(every, roomEvery))
	return r
}

func (r *room) run(every time.Duration) {
	defer close(r.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.measure()
		}
	}
}

// measure reads the free space and resets slack from it. A failed measure
// leaves both as they were.
func (r *room) measure() {
	f, err := r.free(r.dir)
	if err != nil {
		return
	}
	r.measured.Store(f)
	r.slack.Store(f - r.reserve)
}

// close stops the measuring goroutine. A nil room has none.
func (r *room) close() {
	if r == nil {
		return
	}
	close(r.stop)
	<-r.done
}

// take admits a write of about n bytes, or says why not. A nil room admits
// everything.
func (r *room) take(n int) error {
	if r == nil {
		return nil
	}
	slack := r.slack.Add(-int64(n))
	if slack >= 0 {
		return nil
	}
	// What was free before this write, as far as the store knows: the last
	// measure less what it admitted since.
	free := min(r.measured.Load(), r.reserve+slack+int64(n))
	if ok, suppressed := r.every.Allow("room", time.Now()); ok {
		r.log.Warn("store refusing writes: disk nearly full", "dir", r.dir, "free_bytes", free,
			"reserve_bytes", r.reserve, "suppressed", suppressed)
	}
	// The message is for clients, who see it in 503s: no path in it.
	what := fmt.Sprintf("about %s free, under the %s the node keeps free for its store", mib(free), mib(r.reserve))
	if free >= r.reserve {
		what = fmt.Sprintf("about %s free, and this write (about %s) would leave less than the %s the node keeps free for its store",
			mib(free), kib(n), mib(r.reserve))
	}
	return fault.WithRetryAfter(&fault.Error{Class: fault.Exhausted, Err: diskLowError{r.dir}, Msg: "disk nearly full: " + what +
		"; nothing was written (free space, or see the runbook's Disk full)"}, lowRetryAfter)
}

// Room returns the free space of the data directory's file system at its
// last measure and the reserve the store keeps free (writes are refused
// while less is free); ok is false when the store keeps no reserve or
// cannot measure the free space here.
func (s *Store) Room() (free, reserve int64, ok bool) {
	if s.room == nil {
		return 0, 0, false
	}
	return s.room.measured.Load(), s.room.reserve, true
}

// lowRetryAfter is the Retry-After of a write refused for want of space:
// freeing space takes an operator, or a compaction, some seconds at least.
const lowRetryAfter = 10 * time.Second

// diskLowError is ErrDiskLow with the data directory, for logs.
type diskLowError struct{ dir string }

func (e diskLowError) Error() string        { return "data directory " + e.dir }
func (e diskLowError) Is(target error) bool { return target == ErrDiskLow }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(max(n, 0))/(1<<20)) }

func kib(n int) string { return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10)) }

// measureFree is how the store measures its file system's free space:
// the test's replacement, or the system's.
func (o Options) measureFree() func(string) (int64, error) {
	if o.freeSpace != nil {
		return o.freeSpace
	}
	return freeSpace
}

// openMargin is what opening the store writes beyond its log's replay and
// the next log file: the manifest and options files.
const openMargin = 16 << 20

// roomToOpen checks that dir's file system has the space opening the store
// takes: Pebble replays the log into tables and creates the next log file
// (preallocated to 1.1 memtables) before it returns, and when that write
// fails for want of space it retries for good, so the process would hang
// in Open without a word. With the defaults it is far less than the
// reserve (about 25 MiB and the log's size, against 88 MiB), so that a node
// whose disk is nearly full still starts and serves reads. Without a
// reserve, or where the free space cannot be measured, it checks nothing;
// it measures the real directory, whatever Options.FS wraps it in.
func roomToOpen(dir string, opts Options) error {
	if opts.DiskReserve < 0 {
		return nil
	}
	avail, err := opts.measureFree()(dir)
	if err != nil {
		return nil
	}
	var logs int64
	paths, _ := filepath.Glob(filepath.Join(dir, "pebble", "*.log"))
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			logs += fi.Size()
		}
	}
	need := logs + cmp.Or(opts.MemTableSize, DefaultMemTableSize)*11/10 + openMargin
	if avail >= need {
		return nil
	}
	return fmt.Errorf("%w: about %s free on the data directory's file system, under the %s opening the store writes "+
		"(its log's replay, %s, and the next log file); free space on it and start again (runbook: Disk full)",
		ErrDiskLow, mib(avail), mib(need), mib(logs))
}
