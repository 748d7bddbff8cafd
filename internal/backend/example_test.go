package backend_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// A conditional write: create-only, then if-match the ETag read back.
func Example() {
	ctx := context.Background()
	var b backend.Backend = mem.New("example")

	body := []byte(`{"n":1}`)
	v := doc.Derive(nil, 1, doc.MakeTimestamp(1000, 0), body, false)
	etag, err := b.Put(ctx, "acme", "users/1", v, body, backend.Precondition{IfNoneMatch: true})
	fmt.Println(err)

	_, err = b.Put(ctx, "acme", "users/1", v, body, backend.Precondition{IfNoneMatch: true})
	fmt.Println(errors.Is(err, fault.ErrPreconditionFailed))

	body2 := []byte(`{"n":2}`)
	v2 := doc.Derive(&v, 1, doc.MakeTimestamp(2000, 0), body2, false)
	_, err = b.Put(ctx, "acme", "users/1", v2, body2, backend.Precondition{IfMatch: etag})
	fmt.Println(err)

	page, _ := b.List(ctx, "acme", backend.ListOptions{Prefix: "users/"})
	for _, e := range page.Entries {
		o, _ := b.Get(ctx, "acme", e.Key)
		fmt.Printf("%s %s\n", e.Key, o.Body)
	}
	// Output:
	// <nil>
	// true
	// <nil>
	// users/1 {"n":2}
}
