package client

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cairnstore/cairn/api"
)

// Item is one row of a listing.
type Item = api.Item

// ListOption configures List.
type ListOption func(*listOpts)

type listOpts struct {
	prefix, after string
	pageSize      int
}

// Prefix lists only keys that start with p.
func Prefix(p string) ListOption { return func(o *listOpts) { o.prefix = p } }

// After starts the listing after key k (exclusive).
func After(k string) ListOption { return func(o *listOpts) { o.after = k } }

// PageSize sets the rows per request: 0 takes the server's default (100),
// and the server refuses more than its largest page (1000 by default) with
// a 400 rather than send fewer rows than asked.
func PageSize(n int) ListOption { return func(o *listOpts) { o.pageSize = n } }

// List iterates over the documents of tenant in key order, fetching pages
// as it goes and decoding each page as it streams in. It stops at the
// first error, which it yields with a zero Item; a page that fails midway
// is retried from the last row yielded (see [RetryPolicy]).
func (c *Client) List(ctx context.Context, tenant string, opts ...ListOption) iter.Seq2[Item, error] {
	return listRows(c, ctx, "/v1/tenants/"+url.PathEscape(tenant)+"/docs", opts, func(it *Item) string { return it.Key })
}

// listRows iterates over the rows of the listing at path, each a T whose
// key (the cursor) keyOf returns.
func listRows[T any](c *Client, ctx context.Context, path string, opts []ListOption, keyOf func(*T) string) iter.Seq2[T, error] {
	var o listOpts
	for _, f := range opts {
		f(&o)
	}
	return func(yield func(T, error) bool) {
		var zero T
		if o.pageSize < 0 {
			yield(zero, fmt.Errorf("%w: PageSize(%d): want 0 (the server's default) or more", ErrInvalid, o.pageSize))
			return
		}
		cursor := o.after
		for {
			next, err := listPage(c, ctx, path, o, &cursor, keyOf, yield)
			if err != nil {
				if err != errStop {
					yield(zero, err)
				}
				return
			}
			if next == "" {
				return
			}
			cursor = next
		}
	}
}

// errStop is the consumer breaking out of the loop.
var errStop = fmt.Errorf("cairn: list: stopped")

// listPage fetches and yields one page starting after *cursor, retrying
// it from the last yielded key. It returns the next cursor ("" at the end).
func listPage[T any](c *Client, ctx context.Context, path string, o listOpts, cursor *string, keyOf func(*T) string, yield func(T, error) bool) (string, error) {
	for attempt := 1; ; attempt++ {
		q := url.Values{}
		if o.prefix != "" {
			q.Set("prefix", o.prefix)
		}
		if *cursor != "" {
			q.Set("after", *cursor)
		}
		if o.pageSize > 0 {
			q.Set("limit", strconv.Itoa(o.pageSize))
		}
		cl := &call{method: http.MethodGet, path: path, query: q}
		next, hint, err := readPage(c, ctx, cl, cursor, keyOf, yield)
		if err == nil || err == errStop {
			return next, err
		}
		if !c.retryable(ctx, err, false) || !c.wait(ctx, attempt, hint) {
			return "", gaveUp(ctx, err)
		}
	}
}

// readPage makes one attempt at a page, yielding rows as they decode and
// moving *cursor past each.
func readPage[T any](c *Client, ctx context.Context, cl *call, cursor *string, keyOf func(*T) string, yield func(T, error) bool) (next string, hint time.Duration, err error) {
	resp, err := c.send(ctx, cl)
	if err != nil {
		return "", 0, err
	}
	if resp.StatusCode != http.StatusOK {
		e := errorFrom(resp)
		return "", e.RetryAfter, e
	}
	defer resp.Body.Close()
	reqID := resp.Header.Get("X-Request-ID")
	dec := json.NewDecoder(resp.Body)
	fail := func(what string, err error) (string, time.Duration, error) {
		return "", 0, fmt.Errorf("cairn: list: %s (request %s): %w", what, reqID, err)
	}
	if err := expectDelim(dec, '{'); err != nil {
		return fail("reading page", err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail("reading page", err)
		}
		switch tok {
		case "items":
			if err := expectDelim(dec, '['); err != nil {
				return fail("reading items", err)
			}
			for dec.More() {
				var it T
				if err := dec.Decode(&it); err != nil {
					return fail("reading items", err)
				}
				*cursor = keyOf(&it)
				if !yield(it, nil) {
					return "", 0, errStop
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return fail("reading items", err)
			}
		case "next":
			if err := dec.Decode(&next); err != nil {
				return fail("reading next", err)
			}
		case "error":
			var we api.Error
			if err := dec.Decode(&we); err != nil {
				return fail("reading error", err)
			}
			return "", 0, &Error{Code: we.Code, Message: we.Message, RequestID: we.RequestID}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fail("reading page", err)
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return fail("reading page", err)
	}
	return next, 0, nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("want %q, got %v", d, tok)
	}
	return nil
}
