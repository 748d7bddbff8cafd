package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"

	"github.com/cairnstore/cairn/client"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/servertest"
)

// startServer runs a real cairn API over an in-memory store and returns
// its URL, a token for the tenant "demo", and a stop function.
func startServer() (url, token string, stop func()) {
	token, hash, err := server.NewToken()
	if err != nil {
		panic(err)
	}
	srv, err := server.New(server.Options{
		Docs:   &servertest.Mem{},
		Auth:   server.Auth{Tenants: map[string][][32]byte{"demo": {hash}}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	ts := httptest.NewServer(srv)
	return ts.URL, token, ts.Close
}

func Example() {
	url, token, stop := startServer()
	defer stop()
	ctx := context.Background()

	c := client.New(url, token)
	res, err := c.Put(ctx, "demo", "users/42", []byte(`{"name":"Ada"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println("created:", res.Created, "etag:", res.ETag)

	d, err := c.Get(ctx, "demo", "users/42")
	if err != nil {
		panic(err)
	}
	fmt.Println(string(d.Body), d.ETag)

	_, err = c.Get(ctx, "demo", "users/43")
	fmt.Println("missing:", errors.Is(err, client.ErrNotFound))
	// Output:
	// created: true etag: "1"
	// {"name":"Ada"} "1"
	// missing: true
}

// Optimistic concurrency: update only if the document did not change since
// it was read.
func ExampleIfMatch() {
	url, token, stop := startServer()
	defer stop()
	ctx := context.Background()
	c := client.New(url, token)

	c.Put(ctx, "demo", "counter", []byte(`{"n":1}`))
	d, _ := c.Get(ctx, "demo", "counter")

	// Someone else writes in between.
	c.Put(ctx, "demo", "counter", []byte(`{"n":5}`))

	_, err := c.Put(ctx, "demo", "counter", []byte(`{"n":2}`), client.IfMatch(d.ETag))
	fmt.Println("stale write refused:", errors.Is(err, client.ErrPreconditionFailed))

	d, _ = c.Get(ctx, "demo", "counter")
	res, err := c.Put(ctx, "demo", "counter", []byte(`{"n":6}`), client.IfMatch(d.ETag))
	fmt.Println("fresh write:", res.ETag, err)
	// Output:
	// stale write refused: true
	// fresh write: "3" <nil>
}

func ExampleCreateOnly() {
	url, token, stop := startServer()
	defer stop()
	ctx := context.Background()
	c := client.New(url, token)

	_, err := c.Put(ctx, "demo", "lock", []byte(`{"owner":"a"}`), client.CreateOnly())
	fmt.Println("first:", err)
	_, err = c.Put(ctx, "demo", "lock", []byte(`{"owner":"b"}`), client.CreateOnly())
	fmt.Println("second refused:", errors.Is(err, client.ErrPreconditionFailed))
	// Output:
	// first: <nil>
	// second refused: true
}

func ExampleClient_List() {
	url, token, stop := startServer()
	defer stop()
	ctx := context.Background()
	c := client.New(url, token)
	for _, k := range []string{"b/2", "a/1", "b/1", "b/3", "c/1"} {
		c.Put(ctx, "demo", k, []byte(`{}`))
	}
	// Pages of two rows, fetched as the loop advances.
	for it, err := range c.List(ctx, "demo", client.Prefix("b/"), client.PageSize(2)) {
		if err != nil {
			panic(err)
		}
		fmt.Println(it.Key, it.Size)
	}
	// Output:
	// b/1 2
	// b/2 2
	// b/3 2
}

func ExampleError() {
	url, token, stop := startServer()
	defer stop()
	c := client.New(url, token)

	_, err := c.Put(context.Background(), "demo", "bad", []byte(`{"a":1,}`))
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Code, apiErr.Message)
		fmt.Println("invalid:", errors.Is(err, client.ErrInvalid))
	}
	_, err = client.New(url, "wrong-token").Get(context.Background(), "demo", "x")
	fmt.Println("unauthorized:", errors.Is(err, client.ErrUnauthorized))
	// Output:
	// 400 invalid invalid JSON at byte 7: expected a string object key
	// invalid: true
	// unauthorized: true
}

// Resolving a conflict kept under the manual policy: a read names the
// siblings; a person looks at them and keeps one (or writes a new body).
func ExampleClient_Resolve() {
	token, hash, _ := server.NewToken()
	mem := &servertest.Mem{}
	// A node under the manual policy would have kept these two versions
	// written concurrently on two nodes; the in-memory store is told so.
	mem.SetConflict("demo", server.Conflict{Key: "users/42", ETag: `"set"`, Siblings: []server.Sibling{
		{ETag: `"a"`, Body: []byte(`{"name":"Ada"}`), Size: 14},
		{ETag: `"b"`, Body: []byte(`{"name":"Ada L."}`), Size: 16},
	}})
	srv, _ := server.New(server.Options{Docs: mem, Auth: server.Auth{Tenants: map[string][][32]byte{"demo": {hash}}},
		Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx := context.Background()
	c := client.New(ts.URL, token)

	_, err := c.Get(ctx, "demo", "users/42")
	var e *client.Error
	if errors.As(err, &e) && errors.Is(err, client.ErrConflict) {
		fmt.Println("siblings:", e.Siblings)
	}
	cf, _ := c.Conflict(ctx, "demo", "users/42")
	for _, s := range cf.Siblings {
		fmt.Println(s.ETag, string(s.Body))
	}
	if _, err := c.Resolve(ctx, "demo", "users/42", client.Resolution{Choose: cf.Siblings[1].ETag}); err != nil {
		panic(err)
	}
	d, _ := c.Get(ctx, "demo", "users/42")
	fmt.Println("resolved:", string(d.Body))
	// Output:
	// siblings: ["a" "b"]
	// "a" {"name":"Ada"}
	// "b" {"name":"Ada L."}
	// resolved: {"name":"Ada L."}
}
