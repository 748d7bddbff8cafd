package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/node"
)

// stuckNode is a node whose shutdown does not return until released, as a
// node's does when a write is stuck in its store.
type stuckNode struct {
	release chan struct{}
	started chan struct{}
}

func (n *stuckNode) Err() <-chan error { return nil }

func (n *stuckNode) SetDraining() {}

func (n *stuckNode) Shutdown(context.Context) error {
	close(n.started)
	<-n.release
	return nil
}

// TestSecondSignalEndsAStuckShutdown: a second SIGTERM ends the process
// even while the shutdown waits on the store, and says why.
func TestSecondSignalEndsAStuckShutdown(t *testing.T) {
	n := &stuckNode{release: make(chan struct{}), started: make(chan struct{})}
	defer close(n.release)
	sigs := make(chan os.Signal, 1)
	var stderr bytes.Buffer
	env := Env{Stdout: io.Discard, Stderr: &stderr, Signals: sigs}
	done := make(chan int, 1)
	go func() {
		done <- waitAndDrain(context.Background(), env, n, drainTimes{timeout: time.Hour}, slog.New(slog.DiscardHandler))
	}()
	sigs <- syscall.SIGTERM
	<-n.started
	sigs <- syscall.SIGTERM
	if code := <-done; code != exitFail || !strings.Contains(stderr.String(), "again: exiting without waiting") {
		t.Fatalf("exit %d, stderr %q; want %d and the reason", code, stderr.String(), exitFail)
	}
}

// TestSignalAbandonsAStart: SIGTERM while the node starts abandons the
// start, where serve read signals only once the node was up and so could
// not be stopped while a start hung: here the check of an S3 bucket whose
// endpoint accepts connections and never answers.
func TestSignalAbandonsAStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	defer func() {
		ln.Close()
		<-stopped
	}()
	var stderr bytes.Buffer
	sigs, done := serveInProcess(t, &stderr, "--backend", "s3=s3://bucket?endpoint="+ln.Addr().String()+"&insecure=1")
	<-accepted // the start waits on the bucket
	sigs <- syscall.SIGTERM
	if code := <-done; code != exitFail || !strings.Contains(stderr.String(), "while starting: abandoning the start") {
		t.Fatalf("exit %d, stderr %q; want %d and the reason", code, stderr.String(), exitFail)
	}
}

// serveInProcess runs 'cairn serve' with args, after a fresh --data-dir,
// --listen on a free loopback port and no admin listener, on a goroutine
// writing to stderr; a signal sent on sigs reaches it as SIGTERM would, and
// its exit code comes on done.
func serveInProcess(t *testing.T, stderr io.Writer, args ...string) (sigs chan<- os.Signal, done <-chan int) {
	t.Helper()
	s, d := make(chan os.Signal, 1), make(chan int, 1)
	env := Env{Stdout: io.Discard, Stderr: stderr, Signals: s, Getenv: func(string) string { return "" }}
	args = append([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-listen", ""}, args...)
	go func() { d <- Run(context.Background(), args, env) }()
	return s, d
}

// lateNode is a node whose shutdown returns err.
type lateNode struct{ err error }

func (lateNode) Err() <-chan error { return nil }

func (lateNode) SetDraining() {}

func (n lateNode) Shutdown(ctx context.Context) error { return n.err }

// TestDrainTimeoutSaid: a drain that ran out of time is named as such, on
// stderr and in the log, and the "stopped" line of an exit that was not
// clean is a warning.
func TestDrainTimeoutSaid(t *testing.T) {
	var stderr, logs bytes.Buffer
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM
	env := Env{Stdout: io.Discard, Stderr: &stderr, Signals: sigs}
	late := lateNode{errors.Join(fmt.Errorf("%w: %v", node.ErrDrainTimedOut, context.DeadlineExceeded), nil)}
	code := waitAndDrain(context.Background(), env, late, drainTimes{timeout: 15 * time.Second}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if code != exitFail || !strings.Contains(stderr.String(), "did not finish within --drain-timeout 15s") {
		t.Errorf("exit %d, stderr %q; want %d and the drain's timeout named", code, stderr.String(), exitFail)
	}
	for _, want := range []string{`"level":"WARN","msg":"shutdown: drain timed out"`, `"level":"WARN","msg":"stopped","exit_code":1`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %s; want %s", logs.String(), want)
		}
	}
	if strings.Contains(logs.String(), "shutdown failed") {
		t.Errorf("log %s: a drain timeout alone is no other failure", logs.String())
	}

	// Another step's deadline (an exporter's flush) is not the drain's,
	// and the drain's timeout hides no other failure.
	stderr.Reset()
	logs.Reset()
	sigs <- syscall.SIGTERM
	late = lateNode{errors.Join(errors.New("store close: boom"), context.DeadlineExceeded)}
	waitAndDrain(context.Background(), env, late, drainTimes{timeout: 15 * time.Second}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if strings.Contains(stderr.String(), "drain did not finish") || !strings.Contains(stderr.String(), "store close: boom") ||
		!strings.Contains(logs.String(), `"msg":"shutdown failed"`) {
		t.Errorf("stderr %q, log %s; want the failure named, not a drain timeout", stderr.String(), logs.String())
	}
}

// delayNode records the order of the calls waitAndDrain makes.
type delayNode struct{ calls chan string }

func (n delayNode) Err() <-chan error { return nil }

func (n delayNode) SetDraining() { n.calls <- "draining" }

func (n delayNode) Shutdown(context.Context) error {
	n.calls <- "shutdown"
	return nil
}

// TestDrainDelay: with --drain-delay, SIGTERM turns /readyz first and the
// drain waits out the delay; a second signal cuts the delay short.
func TestDrainDelay(t *testing.T) {
	n := delayNode{calls: make(chan string, 2)}
	sigs := make(chan os.Signal, 1)
	var stderr bytes.Buffer
	env := Env{Stdout: io.Discard, Stderr: &stderr, Signals: sigs}
	done := make(chan int, 1)
	go func() {
		done <- waitAndDrain(context.Background(), env, n, drainTimes{delay: time.Hour, timeout: time.Second}, slog.New(slog.DiscardHandler))
	}()
	sigs <- syscall.SIGTERM
	if got := <-n.calls; got != "draining" {
		t.Fatalf("first call %q, want draining", got)
	}
	select {
	case got := <-n.calls:
		t.Fatalf("%q during the delay", got)
	default:
	}
	sigs <- syscall.SIGTERM // the delay is an hour: only this ends it
	if got := <-n.calls; got != "shutdown" {
		t.Fatalf("second call %q, want shutdown", got)
	}
	if code := <-done; code != exitOK || !strings.Contains(stderr.String(), "serving for --drain-delay 1h0m0s") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
