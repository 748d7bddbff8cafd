package node

import (
	"fmt"
	"net"

	"github.com/cairnstore/cairn/internal/fault"
)

// IsLoopback reports whether a listen address binds only loopback: an IP
// loopback address or "localhost". An empty host (":7071") binds every
// interface and is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkAdminExposure refuses an admin listener beyond loopback without an
// admin token: it serves profiles and per-tenant figures.
func checkAdminExposure(cfg Config) error {
	if cfg.AdminListen == "" || IsLoopback(cfg.AdminListen) || len(cfg.Auth.Admin) > 0 {
		return nil
	}
	return fault.New(fault.Config, fault.Context{Op: "node.start"}, fmt.Sprintf(
		"--admin-listen %s is beyond loopback: configure --admin-token-sha256 so the admin routes need a token", cfg.AdminListen))
}
