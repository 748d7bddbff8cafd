package main

import (
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/proctest"
)

// TestBinaryLinksNoTesting: cairn-lab is a command users run (cairn chaos
// run, cairn bench), not a test binary, so it must not link the testing
// package nor cairn's test-support packages (named …test), which would
// register test flags and pull in what only tests need.
func TestBinaryLinksNoTesting(t *testing.T) {
	for _, p := range proctest.Deps(t) {
		if p == "testing" || strings.HasPrefix(p, "testing/") {
			t.Errorf("cairn-lab links %s", p)
		}
		if strings.HasPrefix(p, "github.com/cairnstore/cairn/") && strings.HasSuffix(p, "test") {
			t.Errorf("cairn-lab links the test-support package %s", p)
		}
	}
}
