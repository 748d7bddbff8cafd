package node

import (
	"context"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/cairnstore/cairn/internal/console"
	"github.com/cairnstore/cairn/internal/store"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// newConsole builds the web console the admin listener serves under
// /console/ (package console), over the same interfaces as the admin
// routes and the API server's resolve path.
func (n *Node) newConsole(started time.Time) (*console.Console, error) {
	lim := n.cfg.limits()
	version := n.cfg.Trace.Version
	if version == "" {
		version = telemetry.ReadBuild().Version
	}
	if version == "" {
		version = "dev"
	}
	o := console.Options{
		API:        n.api,
		Docs:       n.docs,
		Serves:     n.consoleServes,
		Node:       consoleView{n},
		Reconciler: adminView{n},
		Quarantine: adminView{n},
		Registry:   n.tel.Metrics.Registry(),
		TenantRequests: func() map[string]int64 {
			out := map[string]int64{}
			for t, st := range n.tel.Metrics.Tenants().Tenants {
				out[t] = st.Requests
			}
			return out
		},
		Limits: console.Limits{MaxInFlight: lim.MaxInFlight, TenantMaxInFlight: lim.TenantMaxInFlight,
			TenantRate: lim.TenantRate, TenantBurst: lim.TenantBurst},
		IsAdmin:      n.api.IsAdmin,
		Logger:       n.log,
		AuthFailed:   n.limiter.AuthFailed,
		Open:         len(n.cfg.Auth.Admin) == 0 && IsLoopback(n.cfg.AdminListen),
		SecureCookie: !IsLoopback(n.cfg.AdminListen) || n.cfg.TLS != nil,
		NodeID:       n.store.Identity().NodeID,
		Version:      version,
		Started:      started,
	}
	if n.chaos != nil {
		o.Chaos = n.chaos
	}
	return console.New(o)
}

// consoleView is the node as the console reads it.
type consoleView struct{ n *Node }

var _ console.Node = consoleView{}

// Tenants lists the tenants with documents in the store and those the
// configuration names, with their policy and a bounded document count.
func (v consoleView) Tenants(ctx context.Context) ([]console.Tenant, error) {
	names := map[string]bool{}
	for t := range v.n.cfg.Auth.Tenants {
		names[t] = true
	}
	for t := range v.n.cfg.Replication.Policies {
		names[t] = true
	}
	for t, err := range v.n.store.Tenants(ctx) {
		if err != nil {
			return nil, err
		}
		names[t] = true
	}
	sorted := make([]string, 0, len(names))
	for t := range names {
		sorted = append(sorted, t)
	}
	slices.Sort(sorted)
	out := make([]console.Tenant, 0, len(sorted))
	for _, t := range sorted {
		row := console.Tenant{Name: t, Policy: v.n.cfg.Replication.Policies[t].String()}
		// From the store: a tenant catching up shows what it holds so far
		// (docs.Service.List refuses it).
		for _, err := range v.n.store.List(ctx, t, store.ListOptions{Limit: console.MaxCount + 1, KeysOnly: true}) {
			if err != nil {
				return nil, err
			}
			row.Docs++
		}
		if row.Docs > console.MaxCount {
			row.Docs, row.AtLeast = console.MaxCount, true
		}
		out = append(out, row)
	}
	return out, nil
}

// Document reads a document's version from the store.
func (v consoleView) Document(ctx context.Context, tenant, key string) (console.Document, error) {
	rec, err := v.n.store.Get(ctx, tenant, key)
	if err != nil {
		return console.Document{}, err
	}
	ver := rec.Version
	d := console.Document{Key: key, ETag: rec.ETag, Vector: map[string]uint64{}, HLC: ver.HLC.String(),
		Writer: strconv.FormatUint(ver.Writer, 16), Deleted: ver.Tombstone, Siblings: ver.Siblings, Body: rec.Body}
	for _, dot := range ver.Vector {
		d.Vector[strconv.FormatUint(dot.Replica, 16)] = dot.Counter
	}
	return d, nil
}

// StoreBytes adds up the sizes of the files in the data directory.
func (v consoleView) StoreBytes() int64 {
	var total int64
	filepath.WalkDir(v.n.cfg.DataDir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed by a compaction meanwhile
		}
		if info, err := d.Info(); err == nil && !d.IsDir() {
			total += info.Size()
		}
		return nil
	})
	return total
}

// consoleServes is console.Options.Serves: a tenant the node is configured
// with, or one it serves without (servesTenant). A configured tenant with
// no documents yet, as every tenant of a new node is, lists as empty, as
// the API lists it, not as a tenant the node does not have.
func (n *Node) consoleServes(ctx context.Context, tenant string) bool {
	if _, ok := n.cfg.Auth.Tenants[tenant]; ok {
		return true
	}
	return n.servesTenant(ctx, tenant)
}
