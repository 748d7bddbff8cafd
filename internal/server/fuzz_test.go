package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/server"
)

// countingDocs counts the writes Docs accepted.
type countingDocs struct {
	memDocs
	stored atomic.Int64
}

func (c *countingDocs) Put(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (string, bool, error) {
	etag, created, err := c.memDocs.Put(ctx, tenant, key, body, pre)
	if err == nil {
		c.stored.Add(1)
	}
	return etag, created, err
}

func (c *countingDocs) Delete(ctx context.Context, tenant, key string, pre doc.Precondition) error {
	err := c.memDocs.Delete(ctx, tenant, key, pre)
	if err == nil {
		c.stored.Add(1)
	}
	return err
}

var fuzzMethods = []string{"GET", "HEAD", "PUT", "DELETE", "POST", "PATCH", "OPTIONS", "get", "PUT "}

// FuzzHandler drives the whole handler with arbitrary requests against an
// in-memory Docs: it never panics, never answers 5xx, never stores anything
// on a 4xx, always echoes a request id, and every error body is the JSON
// error object.
func FuzzHandler(f *testing.F) {
	f.Add(uint8(2), uint8(1), "k", uint8(1), "", "", "", []byte(`{"a":1}`), false)
	f.Add(uint8(0), uint8(1), "k", uint8(1), `"1"`, "", "rid", []byte(nil), false)
	f.Add(uint8(1), uint8(1), "k", uint8(2), "", `W/"1"`, "", []byte(nil), false)
	f.Add(uint8(2), uint8(1), "a%2F%2Fb", uint8(1), "", "*", "", []byte(`[[[[[[[[]]]]]]]]`), true)
	f.Add(uint8(3), uint8(1), "k", uint8(3), `"1"`, "", "", []byte(nil), false)
	f.Add(uint8(0), uint8(3), "prefix=a&after=b&limit=2", uint8(1), "", "", "", []byte(nil), false)
	f.Add(uint8(2), uint8(1), "k", uint8(1), "", "", "", []byte(`{"a":`), true)
	f.Add(uint8(2), uint8(2), "beta/docs/k", uint8(1), "", "", "x y", []byte(`{}`), false)
	f.Add(uint8(4), uint8(0), "/livez", uint8(0), "", "", "", []byte(`x`), false)
	f.Add(uint8(2), uint8(1), "..", uint8(1), "", "", "", []byte(`1`), false)
	f.Add(uint8(2), uint8(1), "k", uint8(1), "", "", "", bytes.Repeat([]byte("1"), 2000), false)

	docs := &countingDocs{}
	e := newEnv(f, func(o *server.Options) {
		o.Docs = docs
		o.MaxBodyBytes = 1024
		o.MaxDepth = 6
		o.Logger = slog.New(slog.DiscardHandler)
	})
	tokens := []string{"", e.tokA, e.tokB, e.tokAdmin, "garbage"}
	f.Fuzz(func(t *testing.T, method, shape uint8, path string, tok uint8, ifMatch, ifNoneMatch, rid string, body []byte, chunked bool) {
		var raw string
		switch shape % 4 {
		case 0:
			raw = path
		case 1:
			raw = "/v1/tenants/acme/docs/" + path
		case 2:
			raw = "/v1/tenants/" + path
		case 3:
			raw = "/v1/tenants/acme/docs?" + path
		}
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return // net/http answers 400 before any handler
		}
		r := &http.Request{
			Method:     fuzzMethods[int(method)%len(fuzzMethods)],
			URL:        u,
			RequestURI: raw,
			Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{},
			Host:          "cairn.test",
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
		}
		r = r.WithContext(t.Context())
		if chunked {
			r.ContentLength = -1
		}
		if tk := tokens[int(tok)%len(tokens)]; tk != "" {
			r.Header.Set("Authorization", "Bearer "+tk)
		}
		for name, v := range map[string]string{"If-Match": ifMatch, "If-None-Match": ifNoneMatch, "X-Request-ID": rid} {
			if v != "" {
				r.Header.Set(name, v)
			}
		}
		before := docs.stored.Load()
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)

		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", r.Method, raw, w.Code, w.Body)
		}
		if w.Header().Get("X-Request-ID") == "" {
			t.Fatalf("no request id")
		}
		if w.Code >= 400 {
			if docs.stored.Load() != before {
				t.Fatalf("%s %s: stored on %d", r.Method, raw, w.Code)
			}
			if r.Method != "HEAD" {
				var apiErr apiError
				if err := json.Unmarshal(w.Body.Bytes(), &apiErr); err != nil || apiErr.Error.Code == "" {
					t.Fatalf("%d error body %q: %v", w.Code, w.Body, err)
				}
			}
		}
	})
}
