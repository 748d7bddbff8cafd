package node

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"

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

// requireAdmin serves next only to requests bearing an admin token. The
// presented token is hashed and compared with every configured hash in
// constant time, without stopping at the first match.
func requireAdmin(hashes [][32]byte, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !adminTokenOK(hashes, r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cairn-admin"`)
			http.Error(w, "admin token required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminTokenOK reports whether r bears one of the admin tokens whose
// SHA-256 hashes are given. Every hash is compared, in constant time.
func adminTokenOK(hashes [][32]byte, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(tok))
	match := 0
	for _, h := range hashes {
		match |= subtle.ConstantTimeCompare(sum[:], h[:])
	}
	return ok && match != 0
}
