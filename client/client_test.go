package client_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairnstore/cairn/client"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/servertest"
)

// flakyDocs fails its first `fails` listings after yielding two rows.
type flakyDocs struct {
	*servertest.Mem
	fails atomic.Int32
	err   error
	mu    sync.Mutex // guards afters
	after []string   // the after cursor of every List call
}

func (f *flakyDocs) List(ctx context.Context, tenant, prefix, after string, limit int) iter.Seq2[server.Item, error] {
	f.mu.Lock()
	f.after = append(f.after, after)
	f.mu.Unlock()
	inner := f.Mem.List(ctx, tenant, prefix, after, limit)
	if f.fails.Add(-1) < 0 {
		return inner
	}
	return func(yield func(server.Item, error) bool) {
		n := 0
		for it, err := range inner {
			if n == 2 {
				yield(server.Item{}, f.err)
				return
			}
			if !yield(it, err) {
				return
			}
			n++
		}
	}
}

type fixture struct {
	url, token, admin string
	docs              *flakyDocs
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	tok, h, _ := server.NewToken()
	adm, ha, _ := server.NewToken()
	docs := &flakyDocs{Mem: &servertest.Mem{}}
	srv, err := server.New(server.Options{
		Docs:   docs,
		Auth:   server.Auth{Tenants: map[string][][32]byte{"demo": {h}}, Admin: [][32]byte{ha}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &fixture{url: ts.URL, token: tok, admin: adm, docs: docs}
}

func TestRoundTrip(t *testing.T) {
	f := newFixture(t)
	c := client.New(f.url+"/", f.token) // a trailing slash is fine
	ctx := t.Context()
	for _, key := range []string{"plain", "a/b/c", "a//b", "..", ".", "a/../b", "sp ace?#%", "€/😀"} {
		res, err := c.Put(ctx, "demo", key, []byte(`{"k":1}`))
		if err != nil || !res.Created || res.ETag == "" {
			t.Fatalf("Put %q: %+v %v", key, res, err)
		}
		d, err := c.Get(ctx, "demo", key)
		if err != nil || d.Key != key || string(d.Body) != `{"k":1}` || d.ETag != res.ETag {
			t.Errorf("Get %q: %+v %v", key, d, err)
		}
		m, err := c.Head(ctx, "demo", key)
		if err != nil || m.Size != 7 || m.ETag != res.ETag {
			t.Errorf("Head %q: %+v %v", key, m, err)
		}
		if _, err := c.Get(ctx, "demo", key, client.IfNoneMatch(res.ETag)); !errors.Is(err, client.ErrNotModified) {
			t.Errorf("Get If-None-Match %q: %v", key, err)
		}
		if res, err := c.Put(ctx, "demo", key, []byte(`2`)); err != nil || res.Created {
			t.Errorf("replace %q: %+v %v", key, res, err)
		}
		if err := c.Delete(ctx, "demo", key); err != nil {
			t.Errorf("Delete %q: %v", key, err)
		}
		if err := c.Delete(ctx, "demo", key); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("second Delete %q: %v", key, err)
		}
	}
	if _, err := c.Head(ctx, "demo", "missing"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Head missing: %v", err)
	}
	if _, err := c.Get(ctx, "other", "k"); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("other tenant: %v", err)
	}
	if _, err := client.New(f.url, f.admin).Get(ctx, "other", "k"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("admin on other tenant: %v", err)
	}
	if _, err := c.Put(ctx, "demo", "k", nil); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("empty body: %v", err)
	}
	if _, err := c.Put(ctx, "demo", "k", make([]byte, 2<<20)); !errors.Is(err, client.ErrTooLarge) {
		t.Errorf("big body: %v", err)
	}
	if err := c.Delete(ctx, "demo", "k", client.IfMatch(`"nope"`)); !errors.Is(err, client.ErrPreconditionFailed) {
		t.Errorf("conditional delete of missing: %v", err)
	}
	if err := c.Delete(ctx, "demo", "k"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("delete of missing: %v", err)
	}
}

// TestHooks: the transport hook sees every request, with the request id
// from the context and the bearer token.
func TestHooks(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	var seen []string
	record := func(next http.RoundTripper) http.RoundTripper {
		return rt(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			seen = append(seen, r.Header.Get("X-Request-ID")+" "+r.Header.Get("Authorization")[:7])
			mu.Unlock()
			r.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			return next.RoundTrip(r)
		})
	}
	c := client.New(f.url, f.token, client.WithTransport(record), client.WithHTTPClient(&http.Client{}))
	ctx := client.ContextWithRequestID(t.Context(), "my-id")
	_, err := c.Get(ctx, "demo", "nope")
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.RequestID != "my-id" {
		t.Errorf("err %v", err)
	}
	if len(seen) != 1 || seen[0] != "my-id Bearer " {
		t.Errorf("hook saw %q", seen)
	}
}

type rt func(*http.Request) (*http.Response, error)

func (f rt) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func putKeys(t *testing.T, c *client.Client, n int) []string {
	t.Helper()
	var keys []string
	for i := range n {
		k := fmt.Sprintf("k%02d", i)
		keys = append(keys, k)
		if _, err := c.Put(t.Context(), "demo", k, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func collect(t *testing.T, seq iter.Seq2[client.Item, error]) ([]string, error) {
	t.Helper()
	var keys []string
	for it, err := range seq {
		if err != nil {
			return keys, err
		}
		keys = append(keys, it.Key)
	}
	return keys, nil
}

func TestListPages(t *testing.T) {
	f := newFixture(t)
	c := client.New(f.url, f.token)
	want := putKeys(t, c, 7)
	got, err := collect(t, c.List(t.Context(), "demo", client.PageSize(3)))
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("List = %v, %v; want %v", got, err, want)
	}
	if !slices.Equal(f.docs.after, []string{"", "k02", "k05"}) {
		t.Errorf("pages requested after %q", f.docs.after)
	}
	got, _ = collect(t, c.List(t.Context(), "demo", client.After("k04")))
	if !slices.Equal(got, want[5:]) {
		t.Errorf("After: %v", got)
	}
	// Breaking out stops fetching.
	f.docs.after = nil
	for range c.List(t.Context(), "demo", client.PageSize(2)) {
		break
	}
	if len(f.docs.after) != 1 {
		t.Errorf("pages fetched after break: %q", f.docs.after)
	}
}

// TestListResumes: a transient failure in the middle of a page is retried
// from the last row yielded; no row is lost or repeated.
func TestListResumes(t *testing.T) {
	f := newFixture(t)
	c := client.New(f.url, f.token, client.WithRetry(client.RetryPolicy{BaseDelay: 1, MaxDelay: 1}))
	want := putKeys(t, c, 6)
	f.docs.err = fault.New(fault.Transient, fault.Context{}, "iterator hiccup")
	f.docs.fails.Store(2)
	got, err := collect(t, c.List(t.Context(), "demo", client.PageSize(10)))
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("List = %v, %v; want %v", got, err, want)
	}
	if !slices.Equal(f.docs.after, []string{"", "k01", "k03"}) {
		t.Errorf("resumed after %q", f.docs.after)
	}
}

// TestListInBandError: a failure that is not transient ends the iteration
// with the server's error.
func TestListInBandError(t *testing.T) {
	f := newFixture(t)
	c := client.New(f.url, f.token)
	putKeys(t, c, 4)
	f.docs.err = fault.New(fault.Corruption, fault.Context{}, "bad block")
	f.docs.fails.Store(1)
	got, err := collect(t, c.List(t.Context(), "demo"))
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Code != "corruption" || apiErr.RequestID == "" || len(got) != 2 {
		t.Errorf("got %v, err %v", got, err)
	}
	if _, err := collect(t, c.List(t.Context(), "Bad!")); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("bad tenant: %v", err)
	}
}
