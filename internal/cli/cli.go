// Package cli is the cairn command line: the serve command that runs a node,
// and the client commands (put, get, del, ls, conflicts) that talk to one. cmd/cairn's
// main only calls [Run], so every command is testable in-process. The chaos
// harness and the load generator are a separate command, cairn-lab (in the
// lab module); 'cairn chaos' and 'cairn bench' run it (see labCommand).
//
// Every serve flag has an environment twin (--data-dir ↔ CAIRN_DATA_DIR;
// --tenant's is CAIRN_TENANTS, see envTwin) and a config-file key
// (data-dir). Precedence: command line, environment, file, default. An error
// about a setting names it as it was given (see origins).
//
// 'cairn completion' and 'cairn config example' are written from the same
// flag tables the commands parse with (the commands table in completion.go,
// newServeFlags), so neither can name a flag the commands lack or miss one.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/cairnstore/cairn/internal/telemetry"
)

// Env is what a command may touch of the process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Environ lists the environment, for serve to name a CAIRN_ variable
	// that looks like a misspelt setting; nil skips that check.
	Environ func() []string
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
  cairn ingest FILE|-           bulk-load NDJSON (--key-field F | --key-pointer P | --schema marketdata|export)
  cairn import FILE --data-dir DIR --tenant T  load NDJSON into a stopped node's data directory (key flags as ingest)
  cairn export FILE --data-dir DIR --tenant T  write a tenant's documents from a stopped node's data directory as NDJSON
  cairn reconcile status|run|quarantine  replication: show progress, start rounds (--wait, --confirm), list damaged objects
  cairn bench [--op get|put]    measure a node's HTTP req/s and latency (--bare URL: against a bare handler)
  cairn bench-bare --listen A   serve a bare net/http handler, the baseline bench compares a node with
  cairn chaos run [--scenario NAME|all] [--seed N] [--duration D] [--nodes N]
                                run the chaos scenarios on a local cluster and report
  cairn completion bash|zsh|fish  print a shell completion script
  cairn config example          print a configuration file with every serve setting at its default
  cairn version                 print the version
  cairn help [COMMAND]          show help for a command

The client commands read CAIRN_URL (default http://127.0.0.1:7070),
CAIRN_TOKEN and CAIRN_TENANT (default demo); the reconcile command reads
CAIRN_ADMIN_URL. 'cairn serve' prints export lines for all four, ready to
paste into a shell.

bench, bench-bare and chaos run the separate command cairn-lab, found at
$CAIRN_LAB_BIN, beside cairn, or on PATH.
`

// exitCode is returned by commands; 2 is a usage error.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// labCommands are the commands cairn-lab serves (lab.go).
var labCommands = [...]string{"bench", "bench-bare", "chaos"}

// ReadsSignals reports whether command cmd reads SIGINT and SIGTERM from
// Env.Signals itself (a node drains; the lab's commands pass them on).
// The others should run with a context the first signal cancels.
func ReadsSignals(cmd string) bool { return cmd == "serve" || slices.Contains(labCommands[:], cmd) }

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
	case "import":
		return importCommand(ctx, rest, env) // import.go
	case "export":
		return exportCommand(ctx, rest, env) // export.go
	case "reconcile":
		return reconcileCommand(ctx, rest, env) // reconcile.go
	case "conflicts":
		return conflictsCommand(ctx, rest, env) // conflicts.go
	case "completion":
		return completionCommand(rest, env) // completion.go
	case "config":
		return configCommand(rest, env) // config_example.go
	case labCommands[0], labCommands[1], labCommands[2]:
		return labCommand(ctx, cmd, rest, env) // lab.go
	case "version", "--version":
		if len(rest) == 1 && isHelp(rest[0]) {
			fmt.Fprintln(env.Stdout, "Usage: cairn version\n\nPrints the version of cairn and the Go it was built with (and its commit, when the build knows it).")
			return exitOK
		}
		if len(rest) > 0 {
			fmt.Fprintf(env.Stderr, "cairn version: takes no arguments, got %q\n", strings.Join(rest, " "))
			return exitUsage
		}
		fmt.Fprintln(env.Stdout, "cairn", versionLine(telemetry.ReadBuild()))
		return exitOK
	case "help", "-h", "--help":
		// Help about help is this usage: asking a command for its help
		// with "help" or a help flag as the command would ask again.
		if len(rest) > 0 && !isHelp(rest[0]) {
			return Run(ctx, []string{rest[0], "--help"}, env)
		}
		fmt.Fprint(env.Stdout, usage)
		return exitOK
	}
	fmt.Fprintf(env.Stderr, "cairn: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

func version() string { return versionOf(telemetry.ReadBuild()) }

func versionOf(b telemetry.Build) string {
	switch {
	case Version != "":
		return Version
	case b.Version != "":
		return b.Version
	}
	return "dev"
}

// versionLine is what 'cairn version' prints: the version, then the
// commit it was built from and that commit's time when the build recorded
// them, and the Go release.
func versionLine(b telemetry.Build) string {
	s := versionOf(b)
	if b.Revision != "" {
		s += " revision " + b.Revision
		if b.Modified {
			s += " (modified)"
		}
	}
	if b.Time != "" {
		s += " from " + b.Time
	}
	return s + " " + runtime.Version()
}
