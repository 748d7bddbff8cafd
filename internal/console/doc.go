// Package console is the operator's web console, served by the admin
// listener under /console/: an overview of the node's telemetry, its
// tenants, a document browser, the open conflicts with a resolver, the
// replication status with a button to start a round, and, with chaos on,
// the fault simulator's profiles.
//
// # Use
//
//	c, err := console.New(console.Options{API: apiServer, Docs: docs, Node: n, …})
//	admin, err := server.NewAdmin(server.AdminOptions{…, Console: c})
//
// The pages are an html/template shell and a small hand-written script and
// style sheet, embedded with go:embed; the script polls the JSON endpoints
// under /console/api/ (every 2 s) so numbers stay current without a reload.
// Nothing is built: there is no JavaScript toolchain.
//
// It acts only through the interfaces the API and admin routes use: a
// resolution goes through [server.Server.Resolve] (the API's resolve path,
// If-Match the sibling set's ETag the page showed), a round through
// [server.Reconciler], a profile through [server.ChaosBackend]. The
// overview reads the node's Prometheus registry in-process.
//
// # Sign-in
//
// A person signs in with the admin token and gets a session cookie: a
// random id naming a row of a server-side table with an expiry; HttpOnly,
// SameSite=Strict, and Secure when [Options.SecureCookie] (a listener beyond
// loopback or TLS). Every state-changing request carries the session's
// synchronizer token (X-CSRF-Token, or a csrf form field) and, when the
// browser sends one, a same-origin Origin. Only a node with no admin token,
// on loopback, lets a loopback client in without one ([Options.Open]). No
// page ever contains a token; answers forbid framing and inline script.
//
// # Concurrency
//
// A Console is safe for concurrent use. The session table, the rate
// samples and the tenant rows each have their own mutex, never held
// together; only the tenant rows' is held across a call into the node
// (Node.Tenants), so that concurrent polls count once. No goroutine is started: expired sessions are swept
// as new ones are made.
//
// # Sharp edges
//
//   - Rates (requests/s, errors/s) are differences between two polls of the
//     registry, so the first poll after start shows none.
//   - A tenant's document count stops at [MaxCount]; the page says "at
//     least" past it. Counting costs a scan, so the tenant rows are
//     reused for 10 s: a count may be that old.
//   - A conflict's common ancestor is shown only where the node still
//     holds its body ([Node.Ancestor]: a merge tenant's base, or a shared
//     parent in the conflict history); otherwise the structural diff
//     compares the siblings with each other.
package console
