// Command cairn runs a cairn node and talks to one. See 'cairn help'.
package main

import (
	"context"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/cairnstore/cairn/internal/cli"
)

func main() {
	args := os.Args[1:]
	ctx := context.Background()
	env := cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Environ: os.Environ}
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	if cli.ReadsSignals(cmd) {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		env.Signals = sigs
		if cmd == "serve" {
			// A node reloads its TLS certificate on SIGHUP rather than
			// exit; the client commands keep the default and end with
			// their terminal.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			env.Hangup = hup
		}
		os.Exit(cli.Run(ctx, args, env))
	}
	// The first SIGINT or SIGTERM stops the command (an import or an ingest
	// ends after its last whole batch and says how far it got); a second one
	// ends the process at once, as a signal does by default. A command the
	// signal stopped exits as a shell reports a process the signal ended
	// (128 + its number: 130, 143), so a script tells an interrupted import
	// from one that failed.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(ctx)
	var caught atomic.Int32
	go func() {
		s := <-sigs
		caught.Store(int32(s.(syscall.Signal)))
		signal.Stop(sigs)
		cancel()
	}()
	code := cli.Run(ctx, args, env)
	if s := caught.Load(); s != 0 && code != 0 {
		code = 128 + int(s)
	}
	os.Exit(code)
}
