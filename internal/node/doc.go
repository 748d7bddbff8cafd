// Package node is the composition root of a cairn node: it opens the
// store with the cache following it, opens the backends and starts their
// reconcile engines, builds the API and admin servers of package server
// over them, serves both listeners, and shuts all of it down in order. It
// handles no request itself: every handler is in package server, behind
// the interfaces server defines: the document service of package docs,
// over the store and the cache, and the admin views node implements over
// the engines (admin.go, replicate_status.go and chaos.go).
//
// # Use
//
//	n, err := node.Start(ctx, cfg) // ctx bounds the start only
//	…
//	err = n.Shutdown(ctx)          // drains requests until ctx ends, then stops
//
// # Order
//
// [Start] opens the store (taking the data directory's lock) with a
// follower of the cache (docs.Follower) as its Watcher, so the cache learns of each write
// after its fsync and before any writer is answered; it then sets up
// telemetry, opens the backends and runs their engines (see
// [Replication]), builds both servers and serves, and returns once the
// listeners accept connections. [Node.Shutdown] flips /readyz to 503,
// drains requests until its context ends, then stops the engines and
// closes the cache and the store, in that order, so no request and no
// round reaches a closed store. A failed Start undoes what it did.
//
// # Concurrency
//
// Addr, AdminAddr, Identity and Err may be called from any goroutine;
// Shutdown once. A Node owns one goroutine per listener, the engines'
// goroutines (replicate.go) and the TLS reloader (tls.go); Shutdown stops
// and waits for all of them.
//
// # Sharp edges
//
// The default configuration has no credentials of its own: the caller (the
// CLI) creates a development token for the demo tenant and refuses to
// listen beyond loopback with it; Node serves whatever Auth it is given,
// but refuses an admin listener beyond loopback without an admin token.
//
// Config.Chaos (cairn serve --enable-chaos) wraps every backend in the
// fault simulator of package chaos, arms the failpoints of the store and
// the engines, and adds the simulator's routes to the admin listener.
// Off, none of it exists.
package node
