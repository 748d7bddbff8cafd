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

const (
	claimFile     = "claims.json"
	claimRunsKept = 32
	// DefaultClaimCheck is Replication.ClaimCheck's default.
	DefaultClaimCheck   = 10 * time.Second
	msgIdentityConflict = "identity: another process writes under this node's identity"
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

// claims is the node's side of its identity claims.
type claims struct {
	id       store.Identity
	mine     claim
	known    []string // run ids this data directory recorded (mine last once recorded)
	file     string   // where they are recorded (claimFile)
	recorded bool     // mine is among them
	blobs    []namedBlobs
	conflict atomic.Bool
	every    logevery.Limiter
}

type namedBlobs struct {
	name string
	b    backend.Blobs
}

// newClaims makes a run id and reads the ids dir recorded.
func newClaims(dir string, id store.Identity, now time.Time) (*claims, error) {
	var runID [16]byte
	_, _ = rand.Read(runID[:])
	host, _ := os.Hostname()
	c := &claims{id: id, every: logevery.Limiter{Period: time.Minute}, mine: claim{
		NodeID: id.NodeID, Incarnation: fmt.Sprintf("%016x", id.Incarnation), Run: hex.EncodeToString(runID[:]),
		Host: host, PID: os.Getpid(), Started: now.UTC().Format(time.RFC3339),
	}}
	name := filepath.Join(dir, claimFile)
	var prev struct {
		Runs []string `json:"runs"`
	}
	raw, err := os.ReadFile(name)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fault.E(fault.Config, fault.Context{Op: "node.claim"}, err)
	default:
		if err := json.Unmarshal(raw, &prev); err != nil {
			return nil, fault.New(fault.Corruption, fault.Context{Op: "node.claim"},
				fmt.Sprintf("%s is damaged (%v): move the data directory aside and start from an empty one, which restores from the backends (%q in %s)",
					name, err, runbookIdentity, runbookPath))
		}
	}
	c.known, c.file = prev.Runs, name
	return c, nil
}

// record adds this run's id to the data directory's list, durably, before
// its first claim is written: every run id a backend may hold is then in
// the list. A run that never writes a claim (its backends unreachable)
// leaves the list as it was, so a node restarting in a loop while its
// backends are away does not push out the id its backends hold.
func (c *claims) record() error {
	if c.recorded {
		return nil
	}
	runs := append(slices.Clone(c.known), c.mine.Run)
	if len(runs) > claimRunsKept {
		runs = runs[len(runs)-claimRunsKept:]
	}
	if err := c.save(runs); err != nil {
		return err
	}
	c.known, c.recorded = runs, true
	return nil
}

// observed records another process's run id, seen claiming this node's
// identity, among the data directory's: once the operator stops one of the
// two, the one restarted first starts (the claim the backends hold is its
// own or the other's last) and takes the identity back, and the other,
// restarted on its copy, is refused.
func (c *claims) observed(run string) error {
	if slices.Contains(c.known, run) {
		return nil
	}
	if err := c.record(); err != nil {
		return err
	}
	runs := append(slices.Clone(c.known), run)
	if len(runs) > claimRunsKept {
		runs = runs[len(runs)-claimRunsKept:]
	}
	if err := c.save(runs); err != nil {
		return err
	}
	c.known = runs
	return nil
}

func (c *claims) save(runs []string) error {
	out, _ := json.Marshal(struct {
		Runs []string `json:"runs"`
	}{runs})
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
// does not answer is checked again by the next check; a claim this data
// directory never made refuses the start.
func (c *claims) start(ctx context.Context, log interface {
	Warn(string, ...any)
}) error {
	for _, nb := range c.blobs {
		held, found, err := c.read(ctx, nb)
		if err != nil {
			log.Warn("identity: the claim could not be read at start; it is checked again later", "backend", nb.name, "err", err)
			continue
		}
		if found && !slices.Contains(c.known, held.Run) {
			return fault.New(fault.Config, fault.Context{Op: "node.start", Backend: nb.name}, fmt.Sprintf(
				"backend %s holds a claim on this node's identity (node id %q, incarnation %s) by a process this data directory never ran: %s. "+
					"This directory is a copy or an old backup of a node's data directory, and two processes writing under one identity silently replace each other's writes. "+
					"Start this node from an empty data directory (it restores from the backends); see %q in %s",
				nb.name, c.id.NodeID, c.mine.Incarnation, held, runbookIdentity, runbookPath))
		}
		if err := c.write(ctx, nb); err != nil {
			log.Warn("identity: the claim could not be written at start; it is written again later", "backend", nb.name, "err", err)
		}
	}
	return nil
}

func (c *claims) read(ctx context.Context, nb namedBlobs) (claim, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, _, err := nb.b.GetBlob(ctx, claimName(c.id))
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

func (c *claims) write(ctx context.Context, nb namedBlobs) error {
	if err := c.record(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := nb.b.PutBlob(ctx, claimName(c.id), encodeClaim(c.mine), backend.Precondition{})
	return err
}

// check reads every claim once: one that is another run's raises the
// alarm, which stays raised, and is claimed back.
func (c *claims) check(ctx context.Context, n *Node) {
	for _, nb := range c.blobs {
		held, found, err := c.read(ctx, nb)
		if err != nil {
			continue // the backend's own failures are reported by its rounds
		}
		if found && held.Run != c.mine.Run {
			if !c.conflict.Swap(true) {
				n.tel.Metrics.IdentityConflict()
			}
			if err := c.observed(held.Run); err != nil {
				n.log.Warn("identity: the other process's claim could not be recorded", "err", err)
			}
			if ok, suppressed := c.every.Allow(nb.name, time.Now()); ok {
				n.log.Error(msgIdentityConflict, "backend", nb.name, "node_id", c.id.NodeID, "incarnation", c.mine.Incarnation,
					"this_run", c.mine.Run, "other", held.String(), "suppressed", suppressed, "runbook", runbookIdentity)
			}
		}
		if !found || held.Run != c.mine.Run {
			_ = c.write(ctx, nb)
		}
	}
}

// run checks the claims every interval until ctx ends.
func (c *claims) run(ctx context.Context, n *Node, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.check(ctx, n)
		}
	}
}

// identityConflict reports whether another process claimed this node's
// identity while it ran.
func (n *Node) identityConflict() bool {
	return n.repl != nil && n.repl.claims != nil && n.repl.claims.conflict.Load()
}
