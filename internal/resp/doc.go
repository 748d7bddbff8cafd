// Package resp is cairn's Redis-protocol front: RESP2 and RESP3 (HELLO 3)
// over the same document service, tokens, limits, metrics, traces and
// logs as the HTTP API (package server). Values are JSON documents,
// checked exactly as a PUT's body; a write is answered once durable. The
// commands, the AUTH and compare-and-set forms, the errors and the limits
// are in docs/resp.md.
//
// # Use
//
//	s, err := resp.New(resp.Options{Docs: docs, Auth: verifier, Limiter: limiter})
//	go s.Serve(ln)     // returns nil after Shutdown
//	…
//	s.Shutdown(ctx)    // refuses new commands, waits for those in flight
//
// # Protocol
//
// Each connection is a limitConn (conn.go): its framer (frame.go) checks
// the RESP framing against Redis's limits and the command size bound and
// hands on whole multibulk commands only (inline ones rewritten);
// limitConn also gives every write a deadline, and closes a connection
// that completes no command within the idle limit (a read deadline counted
// from the last command's start, moved at most once a second). The
// server's connection loop (loop.go) runs each read's whole commands as
// one pipeline, their arguments slices of the framer's buffer (a value
// the store keeps is cloned first), and sends their replies together.
// Replies are written with github.com/tidwall/redcon's Writer, in RESP2;
// the RESP3 types a HELLO 3 client expects (null, map) are written raw
// (reply.go). redcon's reader and server are not used: its parser trusts
// the lengths it reads (a hostile one panics or spins it), and it copies
// every command the framer has already checked.
//
// # Concurrency
//
// One goroutine per connection reads, runs each command in turn
// (handle.go) and writes; a session is touched by it alone. Server state
// shared by connections: the SCAN cursor table (scan.go, under its own
// mutex), the set of open connections (Server.mu) and the draining flag.
// Shutdown waits for the commands in flight, then closes the listener and
// every connection and waits for their goroutines.
//
// # Sharp edges
//
//   - Shedding and node-side failures answer TRYAGAIN, which clients
//     retry; a write answered so may or may not have been made, as an HTTP
//     503's.
//   - MSET and DEL of several keys are a write per key, not atomic.
//   - A SCAN cursor names a key kept in a bounded table: an old one may
//     have expired (the client starts again from 0).
package resp
