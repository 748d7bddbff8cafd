// Package cli is the cairn-lab command line: 'chaos run' (the chaos
// harness, package chaosrun) and 'bench' and 'bench-bare' (the load
// generator, package loadgen). cairn runs cairn-lab for its own chaos,
// bench and bench-bare commands, so the usages and messages speak of
// 'cairn chaos' and 'cairn bench': that is what the user typed. Flags are
// parsed by cairn's own rules (cli.ParseArgs), so --help and a bad flag
// answer as any cairn command does.
package cli

import (
	"context"
	"flag"
	"fmt"
	"os"

	cairncli "github.com/cairnstore/cairn/internal/cli"
)

// Env is what a command may touch of the process, as for cairn's commands.
type Env = cairncli.Env

const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usage = `cairn-lab — cairn's chaos harness and load generator

Usage:
  cairn-lab chaos run [flags]   run the chaos scenarios on a local cluster and report (also: cairn chaos run)
  cairn-lab bench [flags]       measure a node's HTTP req/s and latency (also: cairn bench)
  cairn-lab bench-bare [flags]  serve the bare baseline handler of bench --bare
  cairn-lab bench-replication [flags] LABEL=BINARY...
                                measure replication between nodes sharing S3 (scripts/bench-replication.sh)

'cairn chaos', 'cairn bench' and 'cairn bench-bare' run this command when it
is beside the cairn executable or on PATH.
`

// Run runs the command in args (without the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "bench":
		return benchCommand(ctx, rest, env) // bench.go
	case "bench-bare":
		return benchBare(ctx, rest, env) // bench.go
	case "bench-replication":
		return replbenchCommand(ctx, rest, env) // replbench.go
	case "chaos":
		return chaosCommand(ctx, rest, env) // chaos.go
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return exitOK
	}
	fmt.Fprintf(env.Stderr, "cairn-lab: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

func parseArgs(fs *flag.FlagSet, args []string, env Env) (pos []string, code int, ok bool) {
	return cairncli.ParseArgs(fs, args, env)
}

// clientFlags are the connection flags of cairn's client commands that
// bench takes. There is no --ca-cert: the load generator speaks plain
// HTTP/1.1 only and refuses an https URL.
type clientFlags struct {
	url, token, tenant string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	cairncli.ConnectionFlags(fs, &c.url, &c.token, &c.tenant)
}

// usageError is an error in how the command was called: exit status 2.
type usageError = cairncli.UsageError

// report prints err as cairn's commands do and returns the exit status.
func report(cmd string, err error, env Env) int { return cairncli.Report(cmd, err, env) }
