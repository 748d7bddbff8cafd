package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/logevery"
	"github.com/cairnstore/cairn/internal/store"
)

// Identity claims: two processes must never write under one node identity
// (node id and incarnation). They do when two nodes are started from copies
// of one data directory (a cloned VM, a copied volume) or when a node is
// started on an old backup of its directory: their versions then look
// causally related when they are not, and each silently replaces the
// other's acknowledged writes. The store cannot see it; the backends they
// share can.
//
// Each process run makes a random run id. It records the id in the data
// directory (claimFile, which keeps the last few) and then writes it to a
// claim blob per backend, named by the identity. At start, a claim whose
// run id this directory never recorded was written by another process
// with this identity: the node refuses to start. While it runs, the node
// reads its claims every Replication.ClaimCheck; a claim that is no longer
// its own means a copy started since (a copy's directory has the original's
// run ids, so it passes the start check and claims over it). The node then
// raises the alarm (an ERROR line, cairn_identity_conflict, /readyz 503
// "identity_conflict") until it restarts, and writes its claim back, so the
// other process sees the same on its next check.
//
// Two nodes given one --node-id from different data directories have
// different incarnations, so their identity claims do not meet; but they
// publish one change feed (feed objects are named by node id), each
// overwriting the other's, and each skips that feed as its own, so peers
// and the two nodes themselves miss changes. So each run also claims its
// node id (nodeClaimName), once its start has succeeded and with no check:
// a node id claimed by another incarnation is also what a node rebuilt on
// an empty directory (a lost disk) finds, and a stopped process cannot be
// told from a running one. Once this run's node-id claim was written on a
// backend, a later claim there by another incarnation is a second process
// running with the node id, and raises the same alarm (a claim by the
// same incarnation is a copy of the directory, which the identity claim
// reports). A failed start never made one, so withdraw leaves it alone.

const (
	claimFile     = "claims.json"
	claimRunsKept = 32
	// DefaultClaimCheck is Replication.ClaimCheck's default.
	DefaultClaimCheck   = 10 * time.Second
	msgIdentityConflict = "identity: another process writes under this node's identity"
	msgNodeIDConflict   = "identity: another node runs with this node id"
	runbookIdentity     = "Two nodes with one identity"
)

// claim is a claim blob's content.
type claim struct {
	NodeID      string `json:"node_id"`
	Incarnation string `json:"incarnation"`
	Run         string `json:"run"`
	Host        string `json:"host"`
	PID         int    `json:"pid"`
	Started     string `json:"started"`
}

func (c claim) String() string {
	return fmt.Sprintf("run %s on host %q, pid %d, started %s", c.Run, c.Host, c.PID, c.Started)
}

// claimName is the claim blob of an identity (under backend.BlobDir, as
// every blob).
func claimName(id store.Identity) string {
	return "claims/" + hex.EncodeToString([]byte(id.NodeID)) + "-" + fmt.Sprintf("%016x", id.Incarnation)
}

// nodeClaimName is the claim blob of a node id, whatever its incarnation.
// Hex has no '-', so it never names an identity's claim.
func nodeClaimName(nodeID string) string {
	return "claims/" + hex.EncodeToString([]byte(nodeID))
}

// claims is the node's side of its identity claims.
type claims struct {
	id    store.Identity
	mine  claim
	rec   claimsFile // what the data directory recorded
	file  string     // where (claimFile)
	blobs []namedBlobs
	held  map[string]bool // backends where this run's claim was checked and written
	// nodeHeld: backends where this run's node-id claim was written.
	nodeHeld map[string]bool
	// written is, per backend, the ETag of this run's claim as start wrote
	// it, and replaced the claim start found there (nil for none): what
	// withdraw puts back.
	written  map[string]string
	replaced map[string]*claim
	conflict atomic.Bool
	every    logevery.Limiter
	log      *slog.Logger
	raised   func() // told once, when the alarm is raised
}

// claimsFile is what a data directory records of its claims.
type claimsFile struct {
	// Runs are the run ids of this directory's processes that wrote a
	// claim, and those it saw claiming its identity, oldest first.
	Runs []string `json:"runs"`
	// Claimed is, per backend, the last run id this directory claimed
	// there: a backend left out of the node's settings for many restarts
	// holds an id that Runs no longer has.
	Claimed map[string]string `json:"claimed"`
}

type namedBlobs struct {
	name string
	b    backend.Blobs
}

// newClaims makes a run id and reads what dir recorded of its claims.
func newClaims(dir string, id store.Identity, now time.Time, log *slog.Logger) (*claims, error) {
	var runID [16]byte
	_, _ = rand.Read(runID[:])
	host, _ := os.Hostname()
	c := &claims{id: id, log: log, every: logevery.Limiter{Period: time.Minute}, mine: claim{
		NodeID: id.NodeID, Incarnation: fmt.Sprintf("%016x", id.Incarnation), Run: hex.EncodeToString(runID[:]),
		Host: host, PID: os.Getpid(), Started: now.UTC().Format(time.RFC3339),
	}}
	name := filepath.Join(dir, claimFile)
	raw, err := os.ReadFile(name)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fault.E(fault.Config, fault.Context{Op: "node.claim"}, err)
	default:
		if err := json.Unmarshal(raw, &c.rec); err != nil {
			return nil, fault.New(fault.Corruption, fault.Context{Op: "node.claim"},
				fmt.Sprintf("%s is damaged (%v): move the data directory aside and start from an empty one, which restores from the backends (%q in %s)",
					name, err, runbookIdentity, runbookPath))
		}
	}
	if c.rec.Claimed == nil {
		c.rec.Claimed = map[string]string{}
	}
	c.file, c.held, c.nodeHeld = name, map[string]bool{}, map[string]bool{}
	c.written, c.replaced = map[string]string{}, map[string]*claim{}
	return c, nil
}

// ours reports whether run is a claim of this data directory's on the
// backend name: one of its processes wrote it, or it saw it and recorded it.
func (c *claims) ours(name, run string) bool {
	return slices.Contains(c.rec.Runs, run) || c.rec.Claimed[name] == run
}

// record notes, durably, that this run is about to claim the identity on
// backend name, before it writes the claim: every claim a backend may hold
// is then the directory's own. A run that never writes a claim (its
// backends unreachable) records nothing, so a node restarting in a loop
// while its backends are away does not push the id they hold out of Runs.
func (c *claims) record(name string) error {
	if slices.Contains(c.rec.Runs, c.mine.Run) && c.rec.Claimed[name] == c.mine.Run {
		return nil
	}
	next := claimsFile{Runs: c.rec.Runs, Claimed: maps.Clone(c.rec.Claimed)}
	if !slices.Contains(next.Runs, c.mine.Run) {
		next.Runs = keepLast(append(slices.Clone(next.Runs), c.mine.Run))
	}
	next.Claimed[name] = c.mine.Run
	if err := c.save(next); err != nil {
		return err
	}
	c.rec = next
	return nil
}

// observed records another process's run id, seen claiming this node's
// identity: once the operator stops one of the two, the one restarted
// first starts (the claim the backends hold is its own or the other's
// last) and takes the identity back, and the other, restarted on its
// copy, is refused.
func (c *claims) observed(run string) error {
	if slices.Contains(c.rec.Runs, run) {
		return nil
	}
	next := c.rec
	next.Runs = keepLast(append(slices.Clone(next.Runs), run))
	if err := c.save(next); err != nil {
		return err
	}
	c.rec = next
	return nil
}

func keepLast(runs []string) []string {
	return runs[max(0, len(runs)-claimRunsKept):]
}

func (c *claims) save(f claimsFile) error {
	out, _ := json.Marshal(f)
	if err := store.WriteFileSync(c.file, out); err != nil {
		return fault.E(fault.Config, fault.Context{Op: "node.claim"}, err)
	}
	return nil
}

func (c *claims) add(name string, be backend.Backend) {
	if b, ok := backend.BlobsOf(be); ok {
		c.blobs = append(c.blobs, namedBlobs{name, b})
	}
}

// start checks each backend's claim and makes this run's. A backend that
// does not answer is left to the checks (check); a claim this data
// directory never made refuses the start.
func (c *claims) start(ctx context.Context) error {
	for _, nb := range c.blobs {
		held, found, err := c.read(ctx, nb, claimName(c.id))
		if err == nil && found && held.Run != c.mine.Run && !c.ours(nb.name, held.Run) {
			return fault.New(fault.Config, fault.Context{Op: "node.start", Backend: nb.name}, fmt.Sprintf(
				"backend %s holds a claim on this node's identity (node id %q, incarnation %s) by a process this data directory never ran: %s. "+
					"This directory is a copy or an old backup of a node's data directory, and two processes writing under one identity silently replace each other's writes. "+
					"Start this node from an empty data directory (it restores from the backends); see %q in %s",
				nb.name, c.id.NodeID, c.mine.Incarnation, held, runbookIdentity, runbookPath))
		}
		var etag string
		if err == nil {
			etag, err = c.put(ctx, nb)
		}
		if err != nil {
			c.log.Warn("identity: the claim could not be checked and made at start; it is checked again later", "backend", nb.name, "err", err)
			continue
		}
		c.held[nb.name], c.written[nb.name] = true, etag
		if found {
			c.replaced[nb.name] = &held
		}
	}
	return nil
}

// claimNode makes this run's node-id claim on every backend, over
// whatever claim is there (see the package comment). It runs once the
// start has succeeded, before the checks start: a start that fails (its
// port taken) must not leave a claim that a running node with the id
// would take for a second node running, between the claim and its
// withdrawal. A failure is left to the checks.
func (c *claims) claimNode(ctx context.Context) {
	for _, nb := range c.blobs {
		if !c.held[nb.name] {
			continue // a backend that did not answer at start is left to the checks
		}
		if _, err := c.putBlob(ctx, nb, nodeClaimName(c.id.NodeID)); err != nil {
			c.log.Warn("identity: the node id's claim could not be made at start; it is made again later", "backend", nb.name, "err", err)
			continue
		}
		c.nodeHeld[nb.name] = true
	}
}

// withdraw undoes start's claims for a start that failed after them: it
// puts back the claim each replaced (or deletes this run's, where there was
// none), unless it has been replaced since. A copy of a node's directory
// that fails to start must not leave the node it was copied from seeing
// another process's claim, and raising the alarm, until it restarts.
func (c *claims) withdraw(ctx context.Context) {
	for _, nb := range c.blobs {
		etag, ok := c.written[nb.name]
		if !ok {
			continue
		}
		pre := backend.Precondition{IfMatch: etag}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		if prev := c.replaced[nb.name]; prev != nil {
			_, err = nb.b.PutBlob(wctx, claimName(c.id), encodeClaim(*prev), pre)
		} else {
			err = nb.b.DeleteBlob(wctx, claimName(c.id), pre)
		}
		cancel()
		if err != nil && fault.ClassOf(err) != fault.PreconditionFailed {
			c.log.Warn("identity: the claim of a start that failed could not be withdrawn", "backend", nb.name, "err", err)
		}
	}
}

func (c *claims) read(ctx context.Context, nb namedBlobs, blob string) (claim, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, _, err := nb.b.GetBlob(ctx, blob)
	if fault.ClassOf(err) == fault.NotFound {
		return claim{}, false, nil
	}
	if err != nil {
		return claim{}, false, err
	}
	held, ok := decodeClaim(raw)
	if !ok {
		// Damaged, or not a claim cairn wrote: it is replaced by this run's
		// (if it was another process's, that process finds so on its next
		// check).
		return claim{}, false, nil
	}
	return held, true, nil
}

// A claim blob is the claim's JSON, a newline, and the hex SHA-256 of the
// JSON: a read that damaged it must not be taken for another run's claim.
func encodeClaim(c claim) []byte {
	raw, _ := json.Marshal(c)
	sum := sha256.Sum256(raw)
	return append(append(raw, '\n'), hex.EncodeToString(sum[:])...)
}

func decodeClaim(b []byte) (claim, bool) {
	i := bytes.LastIndexByte(b, '\n')
	if i < 0 {
		return claim{}, false
	}
	sum := sha256.Sum256(b[:i])
	if hex.EncodeToString(sum[:]) != string(b[i+1:]) {
		return claim{}, false
	}
	var c claim
	if err := json.Unmarshal(b[:i], &c); err != nil || c.Run == "" {
		return claim{}, false
	}
	return c, true
}

// put records this run's claim on nb in the data directory, then writes
// it, and returns its ETag.
func (c *claims) put(ctx context.Context, nb namedBlobs) (string, error) {
	if err := c.record(nb.name); err != nil {
		return "", err
	}
	return c.putBlob(ctx, nb, claimName(c.id))
}

// putBlob writes this run's claim to the claim blob on nb.
func (c *claims) putBlob(ctx context.Context, nb namedBlobs, blob string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return nb.b.PutBlob(ctx, blob, encodeClaim(c.mine), backend.Precondition{})
}

// check reads every claim once, and writes this run's where it is not
// there. Another run's claim raises the alarm, which stays raised: on a
// backend where this run's claim was made, any other; where it was not
// (the backend did not answer at start), one this directory never made,
// as start would have refused it.
func (c *claims) check(ctx context.Context) {
	for _, nb := range c.blobs {
		c.checkIdentity(ctx, nb)
		c.checkNode(ctx, nb)
	}
}

func (c *claims) checkIdentity(ctx context.Context, nb namedBlobs) {
	held, found, err := c.read(ctx, nb, claimName(c.id))
	if err != nil || (found && held.Run == c.mine.Run) {
		return // a backend's failures are reported by its rounds
	}
	if found && (c.held[nb.name] || !c.ours(nb.name, held.Run)) {
		c.alarm(nb, held)
	}
	if _, err := c.put(ctx, nb); err == nil {
		c.held[nb.name] = true
	}
}

// checkNode reads the node id's claim on nb and writes this run's where
// it is not there. Another incarnation's claim, where this run's was
// written, raises the alarm; until then it may be a stopped process's.
func (c *claims) checkNode(ctx context.Context, nb namedBlobs) {
	name := nodeClaimName(c.id.NodeID)
	held, found, err := c.read(ctx, nb, name)
	if err != nil || (found && held.Run == c.mine.Run) {
		return
	}
	if found && c.nodeHeld[nb.name] && held.Incarnation != c.mine.Incarnation {
		c.raise()
		if ok, suppressed := c.every.Allow("node id\x00"+nb.name, time.Now()); ok {
			c.log.Error(msgNodeIDConflict, "backend", nb.name, "node_id", c.id.NodeID, "incarnation", c.mine.Incarnation,
				"this_run", c.mine.Run, "other_incarnation", held.Incarnation, "other", held.String(), "suppressed", suppressed,
				"runbook", runbookIdentity)
		}
	}
	if _, err := c.putBlob(ctx, nb, name); err == nil {
		c.nodeHeld[nb.name] = true
	}
}

// raise raises the alarm; raised is told the first time.
func (c *claims) raise() {
	if !c.conflict.Swap(true) && c.raised != nil {
		c.raised()
	}
}

// alarm raises the identity conflict for other's claim on nb.
func (c *claims) alarm(nb namedBlobs, other claim) {
	c.raise()
	if err := c.observed(other.Run); err != nil {
		c.log.Warn("identity: the other process's claim could not be recorded", "err", err)
	}
	if ok, suppressed := c.every.Allow(nb.name, time.Now()); ok {
		c.log.Error(msgIdentityConflict, "backend", nb.name, "node_id", c.id.NodeID, "incarnation", c.mine.Incarnation,
			"this_run", c.mine.Run, "other", other.String(), "suppressed", suppressed, "runbook", runbookIdentity)
	}
}

// run checks the claims every interval until ctx ends.
func (c *claims) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.check(ctx)
		}
	}
}

// identityConflict reports whether another process claimed this node's
// identity while it ran.
func (n *Node) identityConflict() bool {
	return n.repl != nil && n.repl.claims != nil && n.repl.claims.conflict.Load()
}
