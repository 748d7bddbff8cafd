// Package proctest helps tests that run real server processes (the cairn
// binary, Jaeger, versitygw): a buffer for their output that a failing test
// may read while the process still writes, and free loopback ports.
//
// Sharp edge: a port from FreePorts is free when returned, not reserved; a
// process started on it can still lose a race with another. Tests start the
// process right away and fail with its output if it could not listen.
package proctest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/procout"
)

// SyncBuffer collects a process's output, or a logger's, for reading while
// it still writes (package procout, which code outside tests links).
type SyncBuffer = procout.Buffer

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago: all n listeners are open at once, so the ports differ.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	ls := make([]net.Listener, n)
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("proctest: free port: %v", err)
		}
		ls[i] = l
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// Deps returns what the command in the current directory links: the
// import paths go list -deps prints. It fails t unless the list is a whole
// binary's closure, so that a test of what a binary must not link cannot
// pass on an empty list.
func Deps(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps listed %d packages, want the binary's whole closure", len(deps))
	}
	return deps
}

// MainWithCairn is the TestMain of a package that tests the real cairn
// binary. It sets *bin to $CAIRN_BIN (scripts/test.sh builds it with -race)
// or, when that is unset, builds cmd/cairn into a temporary directory it
// removes afterwards; then it runs the tests and exits with their status.
// name prefixes the build's error message.
func MainWithCairn(m *testing.M, bin *string, name string) {
	os.Exit(mainWithCairn(m, bin, name, false))
}

// MainWithCairnLab is MainWithCairn for tests that also run the commands
// cairn hands to cairn-lab (chaos, bench): unless $CAIRN_LAB_BIN is set or
// a cairn-lab is beside the cairn binary (scripts/test.sh builds both into
// one directory), it builds cairn-lab from the lab module into a temporary
// directory and sets $CAIRN_LAB_BIN, which the processes the tests start
// inherit.
func MainWithCairnLab(m *testing.M, bin *string, name string) {
	os.Exit(mainWithCairn(m, bin, name, true))
}

func mainWithCairn(m *testing.M, bin *string, name string, lab bool) int {
	dir, err := os.MkdirTemp("", "cairn-"+name+"-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin = os.Getenv("CAIRN_BIN"); *bin == "" {
		*bin = filepath.Join(dir, "cairn")
		if err := goBuild("", *bin, "github.com/cairnstore/cairn/cmd/cairn"); err != nil {
			fmt.Fprintf(os.Stderr, "%s: building cairn: %v\n", name, err)
			return 1
		}
	}
	if lab && os.Getenv("CAIRN_LAB_BIN") == "" {
		if _, err := os.Stat(filepath.Join(filepath.Dir(*bin), "cairn-lab")); err != nil {
			labBin := filepath.Join(dir, "cairn-lab")
			if err := buildLab(labBin); err != nil {
				fmt.Fprintf(os.Stderr, "%s: building cairn-lab: %v\n", name, err)
				return 1
			}
			os.Setenv("CAIRN_LAB_BIN", labBin)
		}
	}
	return m.Run()
}

// buildLab builds cmd/cairn-lab of the lab module, which sits in the lab
// directory of the main module's root.
func buildLab(out string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return err
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if filepath.Base(root) != "lab" {
		root = filepath.Join(root, "lab")
	}
	return goBuild(root, out, "./cmd/cairn-lab")
}

func goBuild(dir, out, pkg string) error {
	build := exec.Command("go", "build", "-o", out, pkg)
	build.Dir = dir
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return build.Run()
}
