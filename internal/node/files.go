package node

import (
	"cmp"
	"os"
	"strconv"

	"github.com/cairnstore/cairn/internal/resp"
	"github.com/cairnstore/cairn/internal/server"
)

// fileReserve is the open files counted for the node itself besides its
// listeners' connections: Pebble's tables and logs (they grow with the
// store), the backends' connections, the connections a listener answers
// past its bound (64 each).
const fileReserve = 1024

// fileShortfall says whether a limit of open files (RLIMIT_NOFILE) leaves
// room for every connection the node's listeners admit (the API's, the
// admin listener's, the RESP front's) and its own files, and how many those
// need. Past the limit, accept fails ("too many open files"): net/http
// retries it every second and the connections wait unanswered, health
// checks and /metrics included, where past --max-conns they would be
// answered 503; and a store that cannot open its next table or log fails
// until a restart.
func fileShortfall(limit uint64, maxConns, adminConns, respClients int) (need uint64, short bool) {
	need = uint64(maxConns) + uint64(adminConns) + uint64(respClients) + fileReserve
	return need, limit < need
}

// warnFileLimit logs a warning when the process's limit of open files is
// below what its connection limits need (fileShortfall).
func (n *Node) warnFileLimit() {
	limit, ok := openFileLimit()
	if !ok {
		return
	}
	clients := 0
	if n.resp != nil {
		clients = cmp.Or(n.cfg.RespMaxClients, resp.DefaultMaxClients)
	}
	maxConns := cmp.Or(n.cfg.MaxConns, server.DefaultMaxConns)
	admin := 0
	if n.cfg.AdminListen != "" {
		admin = server.DefaultMaxConns // the admin listener's own bound
	}
	if need, short := fileShortfall(limit, maxConns, admin, clients); short {
		n.log.Warn("the process may open fewer files than its connection limits need: past the limit new connections wait unanswered, health checks and /metrics included, instead of being refused, and the store fails when it cannot open a file; raise the limit (LimitNOFILE= in the unit, ulimit -n) or lower --max-conns and --resp-max-clients",
			"open_files_limit", limit, "needed", need, "max_conns", maxConns, "admin_conns", admin, "resp_max_clients", clients,
			"reserve", strconv.Itoa(fileReserve)+" for the store and backends")
	}
}

// warnOpenToOthers logs a warning for each file of secrets the node reads
// or keeps that other users may read: the data directory (its files hold
// every tenant's documents as written; the node makes a new one for its
// owner only, but an existing one keeps its mode) and the TLS key. Files a
// group may read are named too: a group is other users.
func (n *Node) warnOpenToOthers() {
	check := func(flag, path, holds, fix string) {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			return
		}
		n.log.Warn(flag+" is open to other users: it holds "+holds+"; "+fix,
			"flag", flag, "path", path, "mode", fi.Mode().Perm().String())
	}
	check("--data-dir", n.cfg.DataDir, "every tenant's documents", "chmod 700 it (the shipped unit's StateDirectoryMode=0700 does)")
	if n.cfg.TLS != nil {
		check("--tls-key", n.cfg.TLS.KeyFile, "the TLS private key", "chmod 600 it, owned by the node's user, or give it with systemd's LoadCredential= (docs/tls.md)")
	}
}
