// Package cli is the cairn command line: the serve command that runs a node,
// and the client commands (put, get, del, ls, conflicts) that talk to one. cmd/cairn's
// main only calls [Run], so every command is testable in-process.
//
// Every serve flag has an environment twin (--data-dir ↔ CAIRN_DATA_DIR) and
// a config-file key (data-dir). Precedence: command line, environment, file,
// default.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// Env is what a command may touch of the process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Signals delivers SIGINT/SIGTERM to serve; nil means never.
	Signals <-chan os.Signal
	// Hangup delivers SIGHUP to serve, which reads its TLS certificate
	// files again; nil means never.
	Hangup <-chan os.Signal
}

// Version is set at build time with -ldflags "-X .../internal/cli.Version=v1.2.3";
// otherwise it comes from the module build info.
var Version = ""

const usage = `cairn — a multi-tenant JSON document store and cache

Usage:
  cairn serve [flags]           run a node (no flags: ./cairn-data, 127.0.0.1:7070)
  cairn put KEY [FILE|-]        store a JSON document (from FILE, stdin, or --data)
  cairn get KEY                 print a document
  cairn del KEY                 delete a document
  cairn ls [--prefix P]         list keys
  cairn conflicts ls|show|resolve|history  open siblings (manual policy): list, show, resolve (--choose ETAG|--body FILE|--delete); what resolutions discarded
  cairn ingest FILE|-           bulk-load NDJSON (--key-field F | --key-pointer P | --schema marketdata)
  cairn reconcile status|run     replication: show progress, start rounds (--wait, --confirm)
  cairn bench [--op get|put]    measure a node's HTTP req/s and latency (--bare URL: against a bare handler)
  cairn chaos run [--scenario NAME|all] [--seed N] [--duration D] [--nodes N]
                                run the chaos scenarios on a local cluster and report
  cairn version                 print the version
  cairn help [COMMAND]          show help for a command

The client commands read CAIRN_URL (default http://127.0.0.1:7070),
CAIRN_TOKEN and CAIRN_TENANT (default demo). 'cairn serve' prints ready-to-paste
lines for all three.
`

// exitCode is returned by commands; 2 is a usage error.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

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
	case "serve":
		return serve(ctx, rest, env)
	case "put", "get", "del", "delete", "ls", "list":
		return clientCommand(ctx, cmd, rest, env)
	case "ingest":
		return ingestCommand(ctx, rest, env) // ingest.go
	case "reconcile":
		return reconcileCommand(ctx, rest, env) // reconcile.go
	case "conflicts":
		return conflictsCommand(ctx, rest, env) // conflicts.go
	case "bench", "bench-bare":
		return benchCommand(ctx, cmd, rest, env) // bench.go
	case "chaos":
		return chaosCommand(ctx, rest, env) // chaos.go
	case "version", "--version":
		fmt.Fprintln(env.Stdout, "cairn", version())
		return exitOK
	case "help", "-h", "--help":
		if len(rest) > 0 {
			return Run(ctx, []string{rest[0], "--help"}, env)
		}
		fmt.Fprint(env.Stdout, usage)
		return exitOK
	}
	fmt.Fprintf(env.Stderr, "cairn: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// helpOrUsage is the exit code after a flag parsing error: --help is a
// successful request for help, anything else a usage error (the flag package
// has printed it).
func helpOrUsage(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
