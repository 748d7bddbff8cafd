// Package server is every HTTP handler of a cairn node: the API listener
// (documents, conflicts, bulk ingest, probes) and the admin listener
// (health, metrics, profiles, reconciliation, quarantine, the fault
// simulator's controls, and the web console of package console mounted on
// /console/). Both are a [Server], built by [New] and
// [NewAdmin], and share one middleware chain, one token check, one error
// body and one request-id rule; what they serve comes from interfaces the
// package defines and the node implements: [Docs] (and [Conflicts]),
// [BatchWriter], [Reconciler], [Quarantine], [Chaos], [Limiter].
//
// # Use
//
//	api, err := server.New(server.Options{Docs: docs, Auth: auth, Ingest: &server.IngestOptions{Writer: st}})
//	admin, err := server.NewAdmin(server.AdminOptions{Auth: auth, Reconciler: r, Quarantine: q})
//	go api.Serve(ln)  // returns nil after Shutdown
//	…
//	api.SetDraining() // /readyz answers 503 from now on
//	api.Shutdown(ctx) // waits for requests in flight until ctx ends
//
// [Server.Routes] lists what a server mounted. The API's routes:
//
//	PUT|GET|HEAD|DELETE /v1/tenants/{tenant}/docs/{key...}
//	GET    /v1/tenants/{tenant}/docs?prefix=&after=&limit=       streamed listing
//	GET    /v1/tenants/{tenant}/conflicts[/{key...}]             open siblings (conflicts.go)
//	POST   /v1/tenants/{tenant}/conflicts/{key...}/resolve
//	POST   /v1/tenants/{tenant}/ingest?key_field=|key_pointer=  NDJSON stream (ingest.go)
//	GET    /livez, /readyz
//
// The admin listener's are in admin.go and chaos.go; with
// [AdminOptions].RequireToken (a listener beyond loopback) each needs an
// admin token, and the chaos routes need one everywhere.
//
// # One rule for every request
//
// Each request gets an id: the client's X-Request-ID if it is 1–64 bytes
// of [A-Za-z0-9._:-], else a new one. It is echoed in X-Request-Id and
// carried in a [reqctx.Info] with the tenant and operation. Every error,
// whichever layer answers it (net/http itself through [Server.Listener],
// routing, authentication, a handler), is the body of [api.ErrorBody] with
// that id; the status and code come from the error's fault class
// (errors.go). Each request is logged once, its failures with their class
// (the admin listener logs only failures). A tenant route checks, in
// order: tenant syntax (400), [Options.Middleware], the token (401/403,
// auth.go, or 429 past [Admission.AuthFailed]), [Admission.Limiter]
// (429/503), then the handler; [Admission] says it in full.
//
// # Concurrency
//
// A Server is safe for concurrent use once built; mount every route
// before serving. Handlers hold no locks across calls into Docs or the
// store; the ingest route bounds its streams per node and per tenant
// (ingest_limits.go), and the listing and ingest routes extend their
// connection's deadlines as they make progress.
//
// # Sharp edges
//
//   - Middleware must let a panic with http.ErrAbortHandler through: it is
//     how a failed listing aborts its connection rather than pass for a
//     complete page.
//   - Keys are path-unescaped, and a path ServeMux would clean ("a//b",
//     "..") is a 400, not a redirect that would name another key: clients
//     escape '/' and '.' in such keys (%2F, %2E).
//   - The document routes are routed by docRouter, not ServeMux (whose
//     matching allocates): r.PathValue is empty on them, and a route
//     mounted under /v1/tenants/{tenant}/docs/ turns docRouter off.
//   - The listing rows and the error body are written by hand-made
//     encoders on the hot path; they must stay in step with package api.
package server
