// Command cairn-lab is cairn's chaos harness and load generator: what
// tests and measures a cairn node, kept out of the serving binary. cairn
// runs it for 'cairn chaos run', 'cairn bench' and 'cairn bench-bare'.
// See 'cairn-lab help'.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairnstore/cairn/lab/internal/cli"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(cli.Run(context.Background(), os.Args[1:], cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Signals: sigs,
	}))
}
