package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"

	"github.com/cairnstore/cairn/api"
)

// Conflict is a document whose concurrent versions were kept as siblings
// (the tenant's conflict policy is manual): reading it is ErrConflict until
// a person resolves it.
type Conflict = api.Conflict

// Sibling is one of a conflict's versions. Its Body is set by
// [Client.Conflict], nil in [Client.Conflicts] listings and for a deleted
// sibling.
type Sibling = api.Sibling

func conflictsPath(tenant string) string {
	return "/v1/tenants/" + url.PathEscape(tenant) + "/conflicts"
}

// Conflicts iterates over tenant's documents with open siblings in key
// order (without the siblings' bodies), like List: Prefix, After and
// PageSize apply, a failed page is retried from the last row.
func (c *Client) Conflicts(ctx context.Context, tenant string, opts ...ListOption) iter.Seq2[Conflict, error] {
	return listRows(c, ctx, conflictsPath(tenant), opts, func(cf *Conflict) string { return cf.Key })
}

// Conflict returns one document's open siblings with their bodies.
// Errors: ErrNotFound when it has none, and those of Get.
func (c *Client) Conflict(ctx context.Context, tenant, key string) (Conflict, error) {
	resp, err := c.do(ctx, &call{method: http.MethodGet, path: conflictsPath(tenant) + "/" + escapeKey(key)})
	if err != nil {
		return Conflict{}, err
	}
	defer resp.Body.Close()
	var cf Conflict
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<30)).Decode(&cf); err != nil {
		return Conflict{}, fmt.Errorf("cairn: conflict %s/%s: reading body: %w", tenant, key, err)
	}
	for i := range cf.Siblings {
		if cf.Siblings[i].Deleted {
			cf.Siblings[i].Body = nil // the wire says null
		}
	}
	return cf, nil
}

// Resolution says how to resolve a conflict: set exactly one field.
type Resolution struct {
	Choose string          // keep this sibling (its ETag)
	Body   json.RawMessage // or write this new document
	Delete bool            // or delete the document
	// Set, when not "", is the sibling set's ETag as Conflict answered it:
	// the resolution is refused (ErrPreconditionFailed) if another version
	// joined the siblings since, rather than resolving it away unseen.
	Set string
}

// Resolve resolves tenant/key's open siblings. The resolution is a new
// version that supersedes every sibling and replicates like any write.
// It returns the new ETag ("" when the resolution deleted the document).
// Errors: ErrInvalid (a bad resolution, or Choose is not a sibling's ETag;
// the message names the problem), ErrNotFound (no open siblings),
// ErrPreconditionFailed (another version joined the siblings meanwhile:
// look again), ErrTooLarge, and those of Put. Like Put, it is not retried
// after the request may have reached the server.
func (c *Client) Resolve(ctx context.Context, tenant, key string, r Resolution) (string, error) {
	var req api.ResolveRequest
	if r.Choose != "" {
		req.Choose = &r.Choose
	}
	req.Body = r.Body
	if r.Delete {
		req.Delete = &r.Delete
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("cairn: resolve %s/%s: %w", tenant, key, err)
	}
	var conds []Condition
	if r.Set != "" {
		conds = append(conds, IfMatch(r.Set))
	}
	resp, err := c.do(ctx, &call{method: http.MethodPost, path: conflictsPath(tenant) + "/" + escapeKey(key) + "/resolve",
		body: body, conds: conds, write: true})
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("ETag"), nil
}

// Lost is a version of a document that a conflict resolution discarded: a
// last-writer-wins loser, or a sibling a resolution did not keep.
type Lost = api.Lost

// History iterates over what conflict resolutions discarded of tenant/key,
// with the bodies (Body nil for a delete), on the node asked: restore one
// with Put. It is one page; a failure before the first row is retried as
// reads are, one after it is yielded.
func (c *Client) History(ctx context.Context, tenant, key string) iter.Seq2[Lost, error] {
	cl := &call{method: http.MethodGet, path: conflictsPath(tenant) + "/" + escapeKey(key), query: url.Values{"history": {"1"}}}
	return func(yield func(Lost, error) bool) {
		var cursor string // unused: the history is not paginated
		for attempt := 1; ; attempt++ {
			rows := 0
			_, hint, err := readPage(c, ctx, cl, &cursor, func(*Lost) string { return "" }, func(l Lost, _ error) bool {
				rows++
				if l.Deleted {
					l.Body = nil // the wire says null
				}
				return yield(l, nil)
			})
			if err == nil || err == errStop {
				return
			}
			if rows > 0 || !c.retryable(ctx, err, false) || !c.wait(ctx, attempt, hint) {
				yield(Lost{}, gaveUp(ctx, err))
				return
			}
		}
	}
}
