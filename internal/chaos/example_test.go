package chaos_test

import (
	"context"
	"fmt"

	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/chaos"
)

// A profile set on a wrapped backend injects its faults on a schedule that
// depends only on the seed and each key's calls, so it replays.
func Example() {
	b := chaos.Wrap(mem.New("store"), 0, nil)
	if err := b.SetProfile(chaos.Profile{Seed: 42, FailBefore: 0.5, Ops: []string{"stat"}}); err != nil {
		panic(err)
	}
	for range 8 {
		b.Stat(context.Background(), "acme", "k")
	}
	for _, in := range b.Schedule() {
		fmt.Println(in.Op, in.Key, in.N, in.Fault)
	}
	fmt.Println(b.Injected())
	// Output:
	// backend.stat k 0 fail_before
	// backend.stat k 6 fail_before
	// map[fail_before:2]
}
