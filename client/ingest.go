package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/cairnstore/cairn/api"
)

// IngestOptions say how the server names and checks the records of an
// Ingest.
type IngestOptions struct {
	// KeyField is the top-level member naming each document; KeyPointer an
	// RFC 6901 pointer to it ("/meta/id"). Exactly one, except with
	// Schema "marketdata", where documents are named by their symbol.
	KeyField, KeyPointer string
	// Schema is "" (any JSON value) or "marketdata".
	Schema string
	// Size is the stream's length in bytes if known, sent as
	// Content-Length; 0 streams it chunked. Exactly Size bytes are sent:
	// a file that grows while it is sent is sent as it was.
	Size int64
}

// IngestResult is the server's account of an Ingest (see [api.IngestResult]).
type IngestResult = api.IngestResult

// IngestStats are the counts of an Ingest.
type IngestStats = api.IngestStats

// IngestReject is one record the server did not store.
type IngestReject = api.IngestReject

// Ingest streams r, newline-delimited JSON, to the tenant's ingest
// endpoint and returns the server's account. r is read as it is sent, never
// buffered whole, so it may be far larger than memory.
//
// A complete stream returns a nil error even if records were rejected:
// check Stats.Rejected. Otherwise the error is an [*Error] (ErrInvalid for a
// bad option or a body that broke mid-stream, ErrUnauthorized,
// ErrForbidden, ErrUnavailable when the server is busy, ErrServer for a
// store failure) or a transport error; when the server got far enough to
// say, the IngestResult still carries the partial statistics and
// ProcessedBytes.
//
// Ingest is never retried, whatever the RetryPolicy: r is a one-shot
// stream that cannot be rewound without buffering it, and a repeat after a
// partial success would write every accepted document again as a new
// version. The caller decides, knowing ProcessedBytes.
func (c *Client) Ingest(ctx context.Context, tenant string, r io.Reader, o IngestOptions) (IngestResult, error) {
	q := url.Values{}
	for k, v := range map[string]string{"key_field": o.KeyField, "key_pointer": o.KeyPointer, "schema": o.Schema} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/v1/tenants/" + url.PathEscape(tenant) + "/ingest"
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	if o.Size > 0 {
		r = io.LimitReader(r, o.Size)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, io.NopCloser(r))
	if err != nil {
		return IngestResult{}, fmt.Errorf("cairn: ingest: %w", err)
	}
	if o.Size > 0 {
		req.ContentLength = o.Size
	}
	c.setHeaders(ctx, req.Header)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := c.hc.Do(req)
	if err != nil {
		return IngestResult{}, fmt.Errorf("cairn: ingest %s: %w", tenant, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20)) // 100 rejects with their reasons fit easily
	if err != nil {
		return IngestResult{}, fmt.Errorf("cairn: ingest %s: reading the reply: %w", tenant, err)
	}
	var res IngestResult
	jerr := json.Unmarshal(raw, &res)
	if resp.StatusCode/100 == 2 {
		if jerr != nil {
			return IngestResult{}, fmt.Errorf("cairn: ingest %s: malformed reply: %w", tenant, jerr)
		}
		return res, nil
	}
	// A failed stream's reply has the usual error object beside the
	// statistics; errorFrom reads the former.
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return res, errorFrom(resp)
}
