package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// labName is the command that holds the chaos harness and the load
// generator. They are a separate binary so that the serving binary links
// neither toxiproxy, porcupine nor the testing package; 'cairn chaos' and
// 'cairn bench' run it.
const labName = "cairn-lab"

// labCommand runs 'cairn-lab CMD ARGS…' for cairn's chaos, bench and
// bench-bare commands, with this process's standard streams, and returns
// its exit status. The chaos harness starts its nodes from $CAIRN_BIN,
// which is set to this executable: the nodes run the cairn that was asked.
func labCommand(ctx context.Context, cmd string, args []string, env Env) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(env.Stderr, "cairn %s: %v\n", cmd, err)
		return exitFail
	}
	lab, err := findLab(self, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "cairn %s: %v\n", cmd, err)
		return exitUsage
	}
	c := exec.Command(lab, append([]string{cmd}, args...)...)
	c.Stdin, c.Stdout, c.Stderr = env.Stdin, env.Stdout, env.Stderr
	c.Env = append(os.Environ(), "CAIRN_BIN="+self)
	// A Stdin that is not a file is copied by a goroutine that Wait waits
	// for; once cairn-lab has exited, its input no longer matters.
	c.WaitDelay = time.Second
	if err := c.Start(); err != nil {
		fmt.Fprintf(env.Stderr, "cairn %s: %v\n", cmd, err)
		return exitFail
	}
	// The lab command stops as cairn's own commands do, on SIGINT or
	// SIGTERM: pass on the signals this process receives, and a SIGTERM
	// when ctx ends.
	waited := make(chan struct{})
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		done := ctx.Done()
		for {
			select {
			case <-waited:
				return
			case sig := <-env.Signals:
				c.Process.Signal(sig)
			case <-done:
				c.Process.Signal(syscall.SIGTERM)
				done = nil
			}
		}
	}()
	err = c.Wait()
	close(waited)
	<-forwarded
	var ee *exec.ExitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	}
	fmt.Fprintf(env.Stderr, "cairn %s: %s: %v\n", cmd, labName, err)
	return exitFail
}

// findLab returns the cairn-lab executable: $CAIRN_LAB_BIN, else the one
// beside the cairn executable self, else the first on PATH. Its error is
// one line that says how to build it.
func findLab(self string, getenv func(string) string) (string, error) {
	if p, ok := FindCommand(labName, "CAIRN_LAB_BIN", self, getenv); ok {
		return p, nil
	}
	return "", fmt.Errorf("%s is not beside %s nor on PATH; build it from the repository with: go build -C lab -o %s ./cmd/%s",
		labName, self, filepath.Join(filepath.Dir(self), labName), labName)
}

// FindCommand returns the executable of the command name that one of the
// repository's binaries runs: the path in the environment variable envVar
// if it is set, else name beside the executable self (unless self is ""),
// else the first name on PATH. ok is false when there is none. cairn finds
// cairn-lab this way, and cairn-lab the cairn its chaos nodes run.
func FindCommand(name, envVar, self string, getenv func(string) string) (path string, ok bool) {
	if p := getenv(envVar); p != "" {
		return p, true
	}
	if self != "" {
		beside := filepath.Join(filepath.Dir(self), name)
		if fi, err := os.Stat(beside); err == nil && !fi.IsDir() {
			return beside, true
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	return "", false
}
