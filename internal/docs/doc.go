// Package docs is the document service: the operations on documents that
// the HTTP server calls (server.Docs, server.Conflicts), over the store
// with the cache in front, kept linearizable with it. Any front end that
// serves documents calls the same interfaces of package server.
//
// # Use
//
//	c := cache.New(…)
//	st, err := store.Open(dir, store.Options{Watcher: docs.NewFollower(c, changed), …})
//	svc := docs.New(st, c, catchingUp) // catchingUp may be nil: no backends
//	srv, err := server.New(server.Options{Docs: svc, …})
//
// The [Follower] exists before the store opens (the store takes it as its
// Watcher); the [Service] is made over the open store. Package node wires
// both.
//
// # Concurrency
//
// A Service is safe for concurrent use; it holds no lock of its own. The
// cache follows the store through the Follower, which the store calls on
// its committer goroutine: see [Service] for why writers never touch the
// cache.
//
// # Sharp edges
//
// While a tenant catches up with a backend (catchup.go) the service reads
// through to the backend for documents it lacks and refuses conditional
// writes with server.CatchingUpError: its own store cannot decide them yet.
package docs
