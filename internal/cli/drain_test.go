package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stuckNode is a node whose shutdown does not return until released, as a
// node's does when a write is stuck in its store.
type stuckNode struct {
	release chan struct{}
	started chan struct{}
}

func (n *stuckNode) Err() <-chan error { return nil }

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
	go func() { done <- waitAndDrain(context.Background(), env, n, time.Hour, slog.New(slog.DiscardHandler)) }()
	sigs <- syscall.SIGTERM
	<-n.started
	sigs <- syscall.SIGTERM
	if code := <-done; code != exitFail || !strings.Contains(stderr.String(), "again: exiting without waiting") {
		t.Fatalf("exit %d, stderr %q; want %d and the reason", code, stderr.String(), exitFail)
	}
}
