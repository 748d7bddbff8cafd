package node

import (
	"context"
	"fmt"
	"iter"
	"net"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// IsLoopback reports whether a listen address binds only loopback: an IP
// loopback address or "localhost". An empty host (":7071") binds every
// interface and is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && server.LoopbackHost(host)
}

// CheckAdminExposure refuses an admin listener beyond loopback without an
// admin token: it serves profiles and per-tenant figures.
func CheckAdminExposure(cfg Config) error {
	if cfg.AdminListen == "" || IsLoopback(cfg.AdminListen) || len(cfg.Auth.Admin) > 0 {
		return nil
	}
	return fault.New(fault.Config, fault.Context{Op: "node.start"}, fmt.Sprintf(
		"--admin-listen %s is beyond loopback: configure --admin-token-sha256 so the admin routes need a token", cfg.AdminListen))
}

// newAdmin builds the admin listener's server: the same token check,
// request ids and error body as the API (package server), with the routes
// beyond health needing the admin token when it listens beyond loopback.
func (n *Node) newAdmin() (*server.Server, error) {
	o := server.AdminOptions{
		Auth:                 n.cfg.Auth,
		RequireToken:         !IsLoopback(n.cfg.AdminListen),
		AuthFailed:           n.limiter.AuthFailed,
		Logger:               n.log,
		Ready:                n.isReady, // health.go
		Failed:               n.storeDown.Load,
		IdentityConflict:     n.identityConflict,
		CatchingUp:           n.catchingUpAtStart, // catchup.go
		ServeWhileCatchingUp: n.cfg.ServeWhileCatchingUp,
		Metrics:              n.tel.MetricsHandler(),
		Pprof:                telemetry.PprofHandler(),
		TenantStats:          n.tel.TenantStatsHandler(),
		Reconciler:           adminView{n},
		Quarantine:           adminView{n},
		Middleware:           []server.Middleware{n.tel.Middleware(nil)},
	}
	if n.chaos != nil {
		o.Chaos = n.chaos // chaos.go
	}
	c, err := n.newConsole(time.Now()) // console.go
	if err != nil {
		return nil, err
	}
	o.Console = c
	return server.NewAdmin(o)
}

// QuarantineRows implements server.Quarantine over the store's table.
func (a adminView) QuarantineRows(ctx context.Context, backend, tenant, key string) iter.Seq2[api.QuarantineRow, error] {
	return func(yield func(api.QuarantineRow, error) bool) {
		rows := a.n.store.Quarantine(ctx)
		if backend != "" || tenant != "" || key != "" {
			rows = a.n.store.QuarantineOf(ctx, backend, tenant, key)
		}
		for rec, err := range rows {
			if err != nil {
				yield(api.QuarantineRow{}, err)
				return
			}
			row := api.QuarantineRow{Backend: rec.Backend, Tenant: rec.Tenant, Key: rec.Key,
				ETag: rec.ETag, Time: rec.Time, Reason: rec.Reason, Size: rec.Size, Raw: rec.Raw}
			if !yield(row, nil) {
				return
			}
		}
	}
}
