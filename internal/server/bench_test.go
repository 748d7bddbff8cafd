package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/cairnstore/cairn/internal/server"
)

// discardWriter is a ResponseWriter that allocates nothing of its own, so
// the benchmark counts only the handler's allocations.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkGetHit measures the handler on a cache hit, beside a bare
// handler writing the same bytes with the same headers.
func BenchmarkGetHit(b *testing.B) {
	body := bytes.Repeat([]byte(`{"k":"v"}`), 100)
	doc := server.Doc{ETag: `"0123456789abcdef0123456789abcdef"`, Body: body}
	m := &memDocs{get: func(context.Context, string, string) (server.Doc, error) { return doc, nil }}
	e := newEnv(b, func(o *server.Options) { o.Docs = m; o.Logger = slog.New(slog.DiscardHandler) })
	r := httptest.NewRequest("GET", docURL(tenantA, "users/42"), nil)
	r.Header.Set("Authorization", "Bearer "+e.tokA)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("ETag", doc.ETag)
		h.Set("Content-Length", strconv.Itoa(len(doc.Body)))
		w.Write(doc.Body)
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"cairn", e.srv}, {"bare", bare}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			w := &discardWriter{h: http.Header{}}
			for b.Loop() {
				clear(w.h)
				bc.h.ServeHTTP(w, r)
			}
		})
	}
}

// TestGetHitAllocs bounds the handler's allocations on a cache hit: the
// document routes are routed without ServeMux (docRouter), so what is left
// is the exchange, its two context.WithValue layers, the request copy
// WithContext makes and the request id. A new allocation on this path
// shows up here before it shows up in a profile.
func TestGetHitAllocs(t *testing.T) {
	doc := server.Doc{ETag: `"0123456789abcdef0123456789abcdef"`, Body: []byte(`{"k":"v"}`)}
	m := &memDocs{get: func(context.Context, string, string) (server.Doc, error) { return doc, nil }}
	e := newEnv(t, func(o *server.Options) { o.Docs = m; o.Logger = slog.New(slog.DiscardHandler) })
	r := httptest.NewRequest("GET", docURL(tenantA, "users/42"), nil)
	r.Header.Set("Authorization", "Bearer "+e.tokA)
	w := &discardWriter{h: http.Header{}}
	const want = 5
	if got := testing.AllocsPerRun(200, func() { clear(w.h); e.srv.ServeHTTP(w, r) }); got > want {
		t.Errorf("GET of a cached document: %v allocations, want at most %d", got, want)
	}
}

// TestPutAllocs bounds the handler's allocations on a PUT that replaces a
// document (an in-memory docs service, so only the server's own work and
// the fake's copy of the body count): the response's header values come
// from the exchange, not a slice each.
func TestPutAllocs(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.Logger = slog.New(slog.DiscardHandler) })
	body := &rewindBody{}
	r := httptest.NewRequest("PUT", docURL(tenantA, "users/42"), body)
	r.Header.Set("Authorization", "Bearer "+e.tokA)
	w := &discardWriter{h: http.Header{}}
	put := func() {
		body.Reset([]byte(`{"k":"v"}`))
		clear(w.h)
		e.srv.ServeHTTP(w, r)
	}
	put()
	const want = 9
	if got := testing.AllocsPerRun(200, put); got > want {
		t.Errorf("PUT of a document: %v allocations, want at most %d", got, want)
	}
	if got := w.h.Get("Etag"); got == "" {
		t.Errorf("PUT answered without an ETag; header %v", w.h)
	}
}

// rewindBody is a request body that can be served again without an
// allocation of its own.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }
