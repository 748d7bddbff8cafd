package cli

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeLab writes a shell script that stands for cairn-lab and returns its
// path.
func fakeLab(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cairn-lab")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLabCommandRunsCairnLab: chaos, bench and bench-bare run cairn-lab
// with the same arguments, the same streams and $CAIRN_BIN set to this
// executable, and exit with its status.
func TestLabCommandRunsCairnLab(t *testing.T) {
	lab := fakeLab(t, `echo "$@"; echo "bin=$CAIRN_BIN"; read line; echo "in=$line" >&2; exit 3`+"\n")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CAIRN_LAB_BIN": lab}
	for _, args := range [][]string{{"chaos", "run", "--seed", "7"}, {"bench", "--op", "put"}, {"bench-bare", "--size", "9"}, {"help", "bench"}} {
		code, stdout, stderr := run(t, env, "hello\n", args...)
		want := strings.Join(args, " ")
		if args[0] == "help" {
			want = "bench --help"
		}
		if code != 3 || stdout != want+"\nbin="+self+"\n" || stderr != "in=hello\n" {
			t.Errorf("cairn %q: exit %d, stdout %q, stderr %q; want exit 3, the arguments %q and bin=%s on stdout, stdin echoed on stderr",
				args, code, stdout, stderr, want, self)
		}
	}
}

// TestLabCommandMissing: without cairn-lab, the command says in one line
// how to build it, and exits 2.
func TestLabCommandMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, cmd := range []string{"chaos", "bench", "bench-bare"} {
		code, stdout, stderr := run(t, nil, "", cmd, "--help")
		if code != exitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 ||
			!strings.Contains(stderr, "cairn-lab is not beside") || !strings.Contains(stderr, "go build -C lab -o ") {
			t.Errorf("cairn %s without cairn-lab: exit %d, stdout %q, stderr %q; want exit 2 and one line saying how to build it",
				cmd, code, stdout, stderr)
		}
	}
}

// TestLabCommandStops: when the command's context ends, cairn-lab gets a
// SIGTERM and cairn exits with its status.
func TestLabCommandStops(t *testing.T) {
	lab := fakeLab(t, "trap 'echo stopped; exit 7' TERM\necho ready\nread line\n")
	// A pipe that is never written: the script's read blocks until the
	// signal interrupts it.
	stdin, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	defer w.Close()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"bench-bare"}, Env{Stdin: stdin, Stdout: pw, Stderr: io.Discard,
			Getenv: func(k string) string { return map[string]string{"CAIRN_LAB_BIN": lab}[k] }})
		pw.Close()
	}()
	out := bufio.NewReader(pr)
	if line, err := out.ReadString('\n'); line != "ready\n" {
		t.Fatalf("first line %q (%v), want ready", line, err)
	}
	cancel()
	rest, _ := io.ReadAll(out)
	if code := <-done; code != 7 || string(rest) != "stopped\n" {
		t.Errorf("exit %d after %q; want 7 after the script's trap said stopped", code, rest)
	}
}
