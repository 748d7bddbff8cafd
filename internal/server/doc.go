// Package server is cairn's HTTP API: routing, authentication, request
// decoding and error answers in front of a [Docs] service.
//
// # Routes
//
//	PUT    /v1/tenants/{tenant}/docs/{key...}  201 created | 200 replaced, ETag
//	GET    /v1/tenants/{tenant}/docs/{key...}  200 body, ETag | 304
//	HEAD   /v1/tenants/{tenant}/docs/{key...}  as GET, without the body
//	DELETE /v1/tenants/{tenant}/docs/{key...}  204
//	GET    /v1/tenants/{tenant}/docs?prefix=&after=&limit=  streamed listing
//	GET    /v1/tenants/{tenant}/conflicts?prefix=&after=&limit=  streamed listing of open siblings
//	GET    /v1/tenants/{tenant}/conflicts/{key...}  one conflict, bodies included; ?history: what resolutions discarded
//	POST   /v1/tenants/{tenant}/conflicts/{key...}/resolve  {"choose"|"body"|"delete"}
//	GET    /livez   200 while the process serves
//	GET    /readyz  200 when Options.Ready says so, 503 before and after SetDraining,
//	                and while Options.CatchingUp names tenants (unless ServeWhileCatchingUp)
//
// Keys are path-unescaped; a key holding "/" sequences that ServeMux would
// clean ("a//b", "a/./b", "..") must escape them (%2F, %2E): such paths get
// 400 instead of ServeMux's redirect, which would name another key. Other
// methods on the document paths get 405 with Allow; unknown paths 404.
//
// # Conditional requests
//
// ETags are strong. If-Match uses the strong comparison (a W/ tag never
// matches), If-None-Match the weak one (RFC 9110 §8.8.3.2). On PUT and
// DELETE both are passed to Docs as a [doc.Precondition] and evaluated
// atomically with the write; "If-None-Match: *" makes a PUT create-only. On
// GET and HEAD a matching If-None-Match gives 304 and a failing If-Match
// 412. A malformed list, or an empty one on a write, is a 400.
//
// # Conflicts
//
// A document whose concurrent versions were kept as siblings (the manual
// conflict policy) answers GET, HEAD and a write that does not name one of
// them with 409 conflict; the error object adds "etag" (the sibling set's)
// and "siblings" (their ETags, last writer first), and X-Cairn-Siblings
// lists them too. A PUT or DELETE with If-Match naming the set or a sibling
// resolves the conflict; so does POST .../resolve, which writes the chosen
// or given body (or a delete) If-Match the set's ETag, and so gets 412 if
// another version joined the siblings meanwhile. The conflict routes need
// a [Docs] that also implements [Conflicts]; otherwise they answer 404.
//
// # Errors
//
// Every error answer is JSON:
//
//	{"error":{"code":"not_found","message":"…","request_id":"…"}}
//
// code is the fault class name (fault.Class.String), or a more specific
// code where the class table has no row: too_large (413),
// method_not_allowed (405), timeout (408), unsupported_encoding (415, with
// Accept-Encoding), catching_up (503 with Retry-After: a CatchingUpError, a
// request the node cannot decide before it holds the tenant's documents).
// The status comes from
// fault.Class.HTTPStatus: 400 invalid, 401 unauthorized (with
// WWW-Authenticate: Bearer), 403 forbidden, 404 not_found, 409 conflict,
// 412 precondition_failed, 503 transient or exhausted (with Retry-After), 500
// otherwise. 5xx messages show only what a fault.Error's Msg says, never a
// raw cause.
//
// A write whose deadline passes before it is made answers 408 timeout when
// the deadline was the client's own (X-Request-Timeout; a client error,
// logged at Info) and 503 when it was the node's (its failure to finish in
// time); both say nothing was written ([resilience.ClientDeadlineExceeded]).
// A body that stopped arriving is 408 too. The requests net/http answers
// before any handler (a malformed percent-escape in the path, a missing
// Host) get the same JSON error when the listener is wrapped with
// [Server.Listener] or [JSONRawErrors].
//
// # Authentication
//
// Bearer tokens, configured as SHA-256 hashes ([Auth]). Every presented
// token is hashed and compared in constant time with every configured hash.
// No token or an unknown one is 401; a valid token of another tenant is
// 403; an admin token may act on every tenant. The order on a tenant route
// is: tenant syntax (400), [Options.Middleware], authentication (401/403),
// then the handler (key syntax 400, …).
//
// # Bad input
//
// A bad tenant or key is a 400 naming it; an empty body 400; a body over
// Options.MaxBodyBytes 413, refused from Content-Length before reading when
// possible; a body the validator rejects 400 with the byte offset. In every
// such case Docs is not called, so nothing is stored. A body is read into
// memory that grows as bytes arrive (at most twice what arrived, plus 4
// KiB), never sized from Content-Length alone. Content-Encoding gzip is
// decoded, the decoded body bounded by MaxBodyBytes too; identity is no
// coding; any other coding, or more than one, is 415 naming it.
//
// # Listing
//
// limit is a whole number from 1 to Options.MaxListLimit in plain decimal
// digits; anything else (a sign, an empty value, a larger number however
// large) is a 400 stating that rule. Rows are written as Docs yields them,
// with next as the cursor; a failure after the header went out is reported in an
// "error" member and the connection is aborted, so it cannot pass for a
// complete page.
//
// # Request context and logs
//
// Every response carries X-Request-ID: the client's if it is 1–64 bytes of
// [A-Za-z0-9._:-], else a generated one. The id, tenant and operation are in the
// request context as a [reqctx.Info]. Each request is logged once: at Debug
// when it succeeded (the access log), at Info for a 4xx and Error for a 5xx
// or an aborted stream, with its class, op and tenant. What a line copies
// from the request is bounded (path and key 256 bytes, error 1 KiB), so a
// client cannot make a line as large as its request.
//
// # Shutdown
//
// [Server.Drain] flips /readyz to 503 and calls http.Server.Shutdown, which
// waits for in-flight requests.
//
// # Sharp edges
//
// Middleware must let a panic with http.ErrAbortHandler through: it is how a
// failed listing aborts its connection. Routes must be mounted before
// serving starts.
package server
