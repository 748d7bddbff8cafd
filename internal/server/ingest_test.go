package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/deadline"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/server/reqctx"
	"github.com/cairnstore/cairn/internal/store"
)

// failingBody yields data, then fails like a connection cut mid-body.
type failingBody struct {
	r io.Reader
}

func (f *failingBody) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (f *failingBody) Close() error { return nil }

// newTestIngestHandler builds the handler alone, as the node would, with
// limits (defaults filled in) and the rate limit's clock (nil: time.Now).
func newTestIngestHandler(t *testing.T, st *store.Store, limits IngestLimits, now func() time.Time) *ingestHandler {
	t.Helper()
	s, err := New(Options{Docs: noDocs{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h := s.newIngestHandler(&IngestOptions{Writer: st, Limits: limits})
	h.now = now
	return h
}

// noDocs is a document service with no documents: the ingest handler
// writes through its BatchWriter, never through Docs.
type noDocs struct{}

func (noDocs) Get(context.Context, string, string) (Doc, error) { return Doc{}, nil }
func (noDocs) Put(context.Context, string, string, []byte, doc.Precondition) (string, bool, error) {
	return "", false, nil
}
func (noDocs) Delete(context.Context, string, string, doc.Precondition) error { return nil }
func (noDocs) List(context.Context, string, string, string, int) iter.Seq2[Item, error] {
	return func(func(Item, error) bool) {}
}

// serve calls the handler directly, as the server would after routing and
// authentication of tenant, and decodes the reply.
func (h *ingestHandler) serve(t *testing.T, tenant string, body io.ReadCloser) (*httptest.ResponseRecorder, api.IngestResult) {
	t.Helper()
	return h.serveCtx(t, context.Background(), tenant, body)
}

// serveCtx is serve with the request's context.
func (h *ingestHandler) serveCtx(t *testing.T, ctx context.Context, tenant string, body io.ReadCloser) (*httptest.ResponseRecorder, api.IngestResult) {
	t.Helper()
	req := httptest.NewRequestWithContext(ctx, "POST", "/v1/tenants/"+tenant+"/ingest?key_field=id", body)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req = req.WithContext(reqctx.With(req.Context(), &reqctx.Info{ID: "req-1", Tenant: tenant}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var r api.IngestResult
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Errorf("reply %s: %v", w.Body, err)
	}
	return w, r
}

// serveIngest serves one stream of tenant acme with the default limits.
func serveIngest(t *testing.T, st *store.Store, body io.ReadCloser) (*httptest.ResponseRecorder, api.IngestResult) {
	t.Helper()
	return newTestIngestHandler(t, st, IngestLimits{}, nil).serve(t, "acme", body)
}

// TestIngestBodyFails: a body that breaks mid-stream stops the ingest; the
// reply says how far it got, and what it names as durable is.
func TestIngestBodyFails(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	body := `{"id":"a"}` + "\n" + `{"id":"b"}` + "\n" + `{"id":"c` // cut inside line 3
	w, r := serveIngest(t, st, &failingBody{r: strings.NewReader(body)})
	if w.Code != http.StatusBadRequest || r.Complete || r.Error == nil || r.Error.RequestID != "req-1" {
		t.Fatalf("status %d, reply %+v", w.Code, r)
	}
	if !strings.Contains(r.Error.Message, "the request body ended early") {
		t.Errorf("message %q", r.Error.Message)
	}
	// Lines 1 and 2 arrived before the failure; whether they were
	// committed depends on the read that failed, but what the reply says
	// is durable must be there.
	for i, key := range []string{"a", "b"} {
		_, err := st.Get(context.Background(), "acme", key)
		if int64(i+1) <= r.LastDurableLine && err != nil {
			t.Errorf("line %d reported durable, but Get(%s): %v", i+1, key, err)
		}
	}
	if _, err := st.Get(context.Background(), "acme", "c"); err == nil {
		t.Error("the cut record was stored")
	}
}

// TestIngestOutlivesCarriedDeadline: a stream lasts beyond the request
// deadline, also one carried as a value (resilience.Deadlines.Carry), which
// the store would otherwise check batch by batch.
func TestIngestOutlivesCarriedDeadline(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := deadline.With(context.Background(), time.Now().Add(-time.Second), false) // passed already
	body := `{"id":"a"}` + "\n" + `{"id":"b"}` + "\n"
	w, r := newTestIngestHandler(t, st, IngestLimits{}, nil).serveCtx(t, ctx, "acme", io.NopCloser(strings.NewReader(body)))
	if w.Code != http.StatusOK || !r.Complete {
		t.Fatalf("status %d, reply %+v", w.Code, r)
	}
	if _, err := st.Get(context.Background(), "acme", "b"); err != nil {
		t.Fatalf("Get(b): %v", err)
	}
}

// TestIngestStoreFails: a store that fails stops the stream with a 5xx
// that still carries the statistics.
func TestIngestStoreFails(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close() // every PutBatch now fails
	w, r := serveIngest(t, st, io.NopCloser(strings.NewReader(`{"id":"a"}`+"\n"+`{"x":1}`+"\n")))
	if w.Code < 500 || r.Complete || r.Error == nil || r.LastDurableLine != 0 || r.Stats.Accepted != 0 {
		t.Fatalf("status %d, reply %+v", w.Code, r)
	}
	if !bytes.Contains(w.Body.Bytes(), []byte(`"complete":false`)) {
		t.Errorf("body %s", w.Body)
	}
}

// TestIngestGzipCutShort: a gzip body that arrives whole but whose stream
// is cut stops the ingest with a message naming the gzip stream, where it
// said only that reading the body failed.
func TestIngestGzipCutShort(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	io.WriteString(zw, `{"id":"a"}`+"\n"+`{"id":"b"}`+"\n")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	body := zb.String()
	h := newTestIngestHandler(t, st, IngestLimits{}, nil)
	req := httptest.NewRequest("POST", "/v1/tenants/acme/ingest?key_field=id", strings.NewReader(body[:len(body)-6]))
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Content-Encoding", "gzip")
	req = req.WithContext(reqctx.With(req.Context(), &reqctx.Info{ID: "req-1", Tenant: "acme"}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var r api.IngestResult
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatalf("reply %s: %v", w.Body, err)
	}
	if w.Code != http.StatusBadRequest || r.Error == nil || !strings.Contains(r.Error.Message, "not a whole gzip stream (cut short") {
		t.Fatalf("status %d, reply %+v; want 400 naming the gzip stream", w.Code, r.Error)
	}
}

// TestIngestKeyOptions: the key options are refused by what is wrong with
// them: missing, given empty, or both given.
func TestIngestKeyOptions(t *testing.T) {
	h := &ingestHandler{}
	for query, want := range map[string]string{
		"":                            "key_field or key_pointer is required",
		"?key_field=":                 "key_field and key_pointer are empty",
		"?key_pointer=":               "key_field and key_pointer are empty",
		"?key_field=a&key_pointer=/a": "not both",
		"?key_field=id":               "",
	} {
		r := httptest.NewRequest("POST", "/v1/tenants/acme/ingest"+query, nil)
		r.Header.Set("Content-Type", "application/x-ndjson")
		_, err := h.options(r)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: %v, want %q", query, err, want)
		}
	}
}
