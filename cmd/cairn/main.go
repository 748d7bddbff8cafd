// Command cairn runs a cairn node and talks to one. See 'cairn help'.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairnstore/cairn/internal/cli"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	var hup chan os.Signal
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		// A node reloads its TLS certificate on SIGHUP rather than exit;
		// the client commands keep the default and end with their terminal.
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
	}
	os.Exit(cli.Run(context.Background(), os.Args[1:], cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Signals: sigs, Hangup: hup,
	}))
}
