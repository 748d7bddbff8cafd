package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryLinksNoTesting: cairn-lab is a command users run (cairn chaos
// run, cairn bench), not a test binary, so it must not link the testing
// package nor cairn's test-support packages (named …test), which would
// register test flags and pull in what only tests need.
func TestBinaryLinksNoTesting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps listed %d packages, want the binary's whole closure", len(deps))
	}
	for _, p := range deps {
		if p == "testing" || strings.HasPrefix(p, "testing/") {
			t.Errorf("cairn-lab links %s", p)
		}
		if strings.HasPrefix(p, "github.com/cairnstore/cairn/") && strings.HasSuffix(p, "test") {
			t.Errorf("cairn-lab links the test-support package %s", p)
		}
	}
}
