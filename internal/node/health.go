package node

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// The node's own failures, each with a log line of a fixed message (the
// runbook's entries name them, and operators grep for them) and the title
// of its entry in docs/runbook.md, which the log line carries as "runbook"
// and the CLI prints for the failures that keep the node from starting.
const (
	msgStoreFailed  = "store: failed; refusing every request until the node restarts"
	msgStoreLocked  = "store: data directory locked"
	msgStoreCorrupt = "store: local store corrupt"
	msgClockJumped  = "clock: wall clock jumped"
	// msgBackendUnreachable: an S3 backend gave no answer at start.
	msgBackendUnreachable = "backend: unreachable at start"

	runbookDiskFull  = "Disk full"
	runbookWriteFail = "Log write or fsync failure"
	runbookCorrupt   = "Corrupt local store"
	runbookLocked    = "Data directory locked"
	runbookClockJump = "Clock jump"
	runbookPartition = "Partition"
	runbookPath      = "docs/runbook.md"
)

// clockJumpMinStep is the smallest wall clock step reported. NTP slews an
// offset below 128 ms and steps a larger one; steps of up to a second are
// ordinary corrections that the hybrid logical clock absorbs. Beyond that
// the time source is wrong or was changed by hand, and the timestamps this
// node gives its writes (which decide last-writer-wins conflicts) are off
// by as much.
const clockJumpMinStep = time.Second

// newClock is the store's hybrid logical clock, watched for wall clock
// jumps.
func (n *Node) newClock() *doc.Clock {
	c := doc.NewClock(n.cfg.wall)
	c.Watch(clockJumpMinStep, n.cfg.elapsed, n.clockJumped)
	return c
}

// clockJumped runs on the store's committer goroutine when the wall clock
// stepped between two writes.
func (n *Node) clockJumped(j doc.Jump) {
	if n.tel != nil {
		n.tel.Metrics.ClockJumped(j.Direction())
	}
	n.log.Warn(msgClockJumped, "direction", j.Direction(), "step", j.Step.String(), "wall", j.Wall,
		"hlc_ahead", j.Ahead.String(), "runbook", runbookClockJump)
}

// storeFailed runs once, when the store failed a write of its log: from
// then on it refuses every request until the node restarts, so /readyz
// answers 503 and a load balancer sends clients elsewhere.
func (n *Node) storeFailed(err error) {
	n.storeDown.Store(true)
	cause, entry := telemetry.CauseIOError, runbookWriteFail
	if fault.ClassOf(err) == fault.Exhausted && !store.OutOfFiles(err) {
		cause, entry = telemetry.CauseDiskFull, runbookDiskFull
	}
	if n.tel != nil {
		n.tel.Metrics.StoreFailed(cause)
	}
	n.log.Error(msgStoreFailed, "cause", cause, "class", fault.ClassOf(err).String(),
		"data_dir", n.cfg.DataDir, "err", err, "runbook", entry)
}

// storeOpenFailed logs why the store did not open and, for the failures an
// operator must act on before the node can start, says what to do in the
// error the CLI prints. The error keeps err's class.
func (n *Node) storeOpenFailed(err error) error {
	dir := n.cfg.DataDir
	switch {
	case errors.Is(err, store.ErrLocked):
		n.log.Error(msgStoreLocked, "data_dir", dir, "err", err, "runbook", runbookLocked)
		return fmt.Errorf("%w: is another cairn serve, import or export using --data-dir %s? See %q in %s",
			err, dir, runbookLocked, runbookPath)
	case fault.ClassOf(err) == fault.Corruption:
		n.log.Error(msgStoreCorrupt, "data_dir", dir, "err", err, "runbook", runbookCorrupt)
		return fmt.Errorf("%w: the local store in --data-dir %s is damaged and the node will not serve from it; see %q in %s",
			err, dir, runbookCorrupt, runbookPath)
	}
	return err
}

// storeFatal ends the process when the store cannot go on: Pebble met a
// damaged table, or gave up on one of its own goroutines. It logs what
// storeOpenFailed logs for the same damage found at start, then exits 1.
// Pebble checks a table only when it reads it, so a supervisor's restart
// serves until it meets the table again and exits the same way (runbook,
// "Corrupt local store").
func (n *Node) storeFatal(err error) {
	if err = n.storeOpenFailed(err); fault.ClassOf(err) != fault.Corruption {
		n.log.Error(msgStoreFailed, "cause", telemetry.CauseIOError, "class", fault.ClassOf(err).String(),
			"data_dir", n.cfg.DataDir, "err", err, "runbook", runbookWriteFail)
	}
	// What cairn serve prints for a store it refuses at start, with its
	// runbook entry: the process ends here, not through the CLI.
	fmt.Fprintf(os.Stderr, "cairn serve: %v\n", err)
	exit(1)
}

// exit is os.Exit; a variable so that a test can see it called.
var exit = os.Exit

// isReady is what /readyz reports on both listeners before tenants are
// considered: started, not shutting down, and the store still writing.
func (n *Node) isReady() bool { return n.ready.Load() && !n.storeDown.Load() }
