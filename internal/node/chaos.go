package node

import (
	"crypto/sha256"
	"runtime"
	"runtime/debug"
	"slices"

	"github.com/cairnstore/cairn/api/chaosapi"
	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/chaos"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
)

// Chaos turns on the fault simulator (cairn serve --enable-chaos). Off by
// default: a node without it has no chaos routes, wraps no backend and
// arms no failpoint.
//
// With it, every backend is wrapped in a chaos.Backend whose fault profile
// the admin listener sets (PUT /v1/admin/chaos/{backend}, admin token
// required even on loopback; package server, chaos.go), the failpoints named in Failpoints are armed
// in the store and the reconcilers, and Ballast bytes are held for the
// node's life.
type Chaos struct {
	// Seed drives every fault decision; each backend's seed is derived
	// from it and the backend's name. The start-up log prints it.
	Seed uint64
	// Failpoints is CAIRN_FAILPOINTS: "name=kill@N[,name=kill%P]".
	Failpoints string
	// Ballast is CAIRN_CHAOS_BALLAST: bytes allocated and held at start.
	Ballast int64
}

// chaosState is a running node's simulator. Set once in Start.
type chaosState struct {
	cfg      Chaos
	fp       *chaos.Failpoints         // nil when none is armed
	backends map[string]*chaos.Backend // by backend name
	names    []string                  // sorted
	ballast  []byte
}

// setupChaos parses the failpoints and allocates the ballast, before the
// store opens (the store takes the failpoint hook).
func (n *Node) setupChaos() error {
	c := n.cfg.Chaos
	if c == nil {
		return nil
	}
	fp, err := chaos.ParseFailpoints(c.Failpoints, c.Seed, n.log)
	if err != nil {
		return fault.New(fault.Config, fault.Context{Op: "node.start"}, "CAIRN_FAILPOINTS: "+err.Error())
	}
	cs := &chaosState{cfg: *c, backends: map[string]*chaos.Backend{}}
	if fp.Armed() {
		cs.fp = fp
	}
	cs.ballast = chaos.Ballast(c.Ballast)
	n.chaos = cs
	n.log.Warn("chaos: simulator enabled", "seed", c.Seed, "failpoints", fp.String(),
		"ballast_bytes", c.Ballast, "gomemlimit", debug.SetMemoryLimit(-1))
	return nil
}

// failpoint is the hook for the store and the engines: nil unless a
// failpoint is armed, so an unarmed node pays one nil check.
func (n *Node) failpoint() func(string) {
	if n.chaos == nil || n.chaos.fp == nil {
		return nil
	}
	return n.chaos.fp.Hit
}

// wrapChaos wraps be when chaos is on.
func (n *Node) wrapChaos(be backend.Backend) backend.Backend {
	cs := n.chaos
	if cs == nil {
		return be
	}
	name := be.Name()
	cb := chaos.Wrap(be, cs.cfg.Seed^nameSeed(name), chaos.Report{Log: n.log, Counter: n.tel.Metrics})
	cs.backends[name] = cb
	cs.names = append(cs.names, name)
	slices.Sort(cs.names)
	n.tel.Metrics.AddChaosBackend(name, chaos.Faults)
	return cb
}

// keepBallast holds the ballast until the node is shut down.
func (n *Node) keepBallast() {
	if n.chaos != nil {
		runtime.KeepAlive(n.chaos.ballast)
	}
}

// nameSeed gives each backend its own schedule under one node seed.
func nameSeed(name string) uint64 {
	s := sha256.Sum256([]byte(name))
	var x uint64
	for _, b := range s[:8] {
		x = x<<8 | uint64(b)
	}
	return x
}

var _ server.Chaos = (*chaosState)(nil)

// ChaosStatus implements server.Chaos.
func (cs *chaosState) ChaosStatus() chaosapi.Status {
	out := chaosapi.Status{Seed: cs.cfg.Seed, Backends: map[string]chaosapi.BackendStatus{}}
	if cs.fp != nil {
		out.Failpoints = cs.fp.String()
	}
	for name, cb := range cs.backends {
		inj := cb.Injected()
		if inj == nil {
			inj = map[string]int64{}
		}
		out.Backends[name] = chaosapi.BackendStatus{Profile: cb.Profile(), Injected: inj}
	}
	return out
}

// ChaosBackend implements server.Chaos.
func (cs *chaosState) ChaosBackend(name string) (server.ChaosBackend, []string) {
	cb := cs.backends[name]
	if cb == nil {
		return nil, cs.names // a nil interface, not a nil *chaos.Backend in one
	}
	return cb, nil
}
