// Package client is the Go client of cairn's HTTP API.
//
// # Usage
//
//	c := client.New("http://127.0.0.1:7070", os.Getenv("CAIRN_TOKEN"))
//	res, err := c.Put(ctx, "demo", "users/42", []byte(`{"name":"Ada"}`), client.CreateOnly())
//	if errors.Is(err, client.ErrPreconditionFailed) {
//		// it already exists
//	}
//	d, err := c.Get(ctx, "demo", "users/42")
//	// update only if nobody else did in between
//	_, err = c.Put(ctx, "demo", "users/42", []byte(`{"name":"Ada L."}`), client.IfMatch(d.ETag))
//	for it, err := range c.List(ctx, "demo", client.Prefix("users/")) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(it.Key, it.Size)
//	}
//
// # Errors
//
// Every call takes a context. A non-2xx answer is an [*Error] carrying the
// status, the server's code and message and the request id; match it with
// errors.Is against [ErrNotFound], [ErrPreconditionFailed],
// [ErrUnauthorized], [ErrForbidden], [ErrInvalid], [ErrTooLarge],
// [ErrNotModified], [ErrConflict], [ErrUnavailable] and [ErrServer].
// Transport failures are returned wrapped, so errors.Is(err,
// context.DeadlineExceeded) works.
//
// # Conflicts
//
// Under a tenant's manual conflict policy, concurrent versions of a document
// are kept as siblings: Get, Head and a Put or Delete without an IfMatch
// fail with [ErrConflict], and the [*Error]'s Siblings lists their ETags;
// a Put or Delete whose IfMatch names neither a sibling nor the set fails
// with [ErrPreconditionFailed], as it would without siblings. [Client.Conflicts] lists such documents,
// [Client.Conflict] shows one with the siblings' bodies, and
// [Client.Resolve] (or a write with IfMatch of a sibling) resolves it.
// [Client.History] shows what resolutions discarded, to restore with Put.
//
// # Retries
//
// Reads are retried on transport errors and on 408/429/502/503/504; writes
// only when they cannot have been applied (no connection, or 429). Waits
// use exponential backoff with full jitter and honour Retry-After. See
// [RetryPolicy].
//
// # Hooks
//
// [WithHTTPClient] replaces the http.Client; [WithTransport] wraps its
// RoundTripper (tracing headers, metrics); [ContextWithRequestID] sets the
// X-Request-ID of a call.
//
// # Types
//
// The bodies the server sends ([Item], [Conflict], [IngestResult], …) are
// package api's, named here by aliases: the client and the server share one
// definition of each.
package client
