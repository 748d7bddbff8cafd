package store_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
)

func Example() {
	dir, _ := os.MkdirTemp("", "cairn-store-example")
	defer os.RemoveAll(dir)
	s, err := store.Open(dir, store.Options{NodeID: "example"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	// Create only if absent, then update only if nobody changed it since.
	v1, _ := s.Put(ctx, "demo", "users/ada", []byte(`{"name":"Ada"}`), doc.Precondition{IfNoneMatch: []string{"*"}})
	_, err = s.Put(ctx, "demo", "users/ada", []byte(`{}`), doc.Precondition{IfNoneMatch: []string{"*"}})
	fmt.Println("second create:", errors.Is(err, fault.ErrPreconditionFailed))
	_, _ = s.Put(ctx, "demo", "users/ada", []byte(`{"name":"Ada L."}`), doc.Precondition{IfMatch: []string{v1.ETag}})
	_, _ = s.Put(ctx, "demo", "users/bob", []byte(`{"name":"Bob"}`), doc.Precondition{})

	for rec, err := range s.List(ctx, "demo", store.ListOptions{Prefix: "users/"}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %s\n", rec.Key, rec.Body)
	}
	for c, err := range s.Changes(ctx, "demo", 0, 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("change", c.Seq, c.Key)
	}
	// Output:
	// second create: true
	// users/ada {"name":"Ada L."}
	// users/bob {"name":"Bob"}
	// change 1 users/ada
	// change 2 users/ada
	// change 3 users/bob
}
