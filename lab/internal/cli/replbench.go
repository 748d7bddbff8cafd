package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/lab/internal/chaosrun"
	"github.com/cairnstore/cairn/lab/internal/replbench"
)

const replbenchUsage = `Usage: cairn-lab bench-replication [flags] LABEL=CAIRN-BINARY...

Measures replication between two nodes sharing one S3 backend (versitygw on
loopback, default settings) for each cairn binary in turn, and prints a
table with each later binary's ratio to the first:

  1  backend requests per 1,000 writes of distinct keys
  2  uploads/s while one key is rewritten 1,000 times a second
  3  delay from a write on A to B serving it, p50 and p99, while 2,000 writes/s flow
  4  catch-up of an empty node from --docs documents: docs/s and peak RSS
  5  an in-sync round over the tenant: duration and objects read

scripts/bench-replication.sh builds the binaries and runs this.

Flags:
`

func replbenchCommand(ctx context.Context, args []string, env Env) int {
	fs := flag.NewFlagSet("bench-replication", flag.ContinueOnError)
	var o replbench.Options
	rows := fs.String("rows", "1,2,3,4,5", "comma-separated `rows` to run")
	fs.IntVar(&o.Docs, "docs", 100_000, "rows 4 and 5: `documents` in the tenant")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "rows 2 and 3: how long the writes flow")
	fs.IntVar(&o.HotRate, "hot-rate", 1000, "row 2: `writes` per second of the hot key")
	fs.IntVar(&o.FlowRate, "flow-rate", 2000, "row 3: `writes` per second of distinct keys")
	fs.IntVar(&o.ProbeEvery, "probe-every", 20, "row 3: poll one write in `n` on node B")
	fs.DurationVar(&o.ProbeTimeout, "probe-timeout", 90*time.Second, "row 3: how long after the writes a probe is waited for")
	dir := fs.String("dir", "", "scratch `directory` (default: a temporary one, removed unless --keep)")
	keep := fs.Bool("keep", false, "keep the scratch directory")
	gw := fs.String("versitygw", "", "versitygw `binary` (default: $CAIRN_VERSITYGW_BIN or .tools/versitygw-*/ above the working directory)")
	serveArgs := fs.String("serve-args", "", "extra 'cairn serve' `flags` for every node, space-separated")
	fs.Usage = func() { fmt.Fprint(fs.Output(), replbenchUsage); fs.PrintDefaults() }
	pos, code, ok := parseArgs(fs, args, env)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprintf(env.Stderr, "cairn-lab bench-replication: want at least one LABEL=CAIRN-BINARY\n")
		return exitUsage
	}
	for _, a := range pos {
		label, path, ok := strings.Cut(a, "=")
		if !ok || label == "" || path == "" {
			fmt.Fprintf(env.Stderr, "cairn-lab bench-replication: %q: want LABEL=CAIRN-BINARY\n", a)
			return exitUsage
		}
		o.Binaries = append(o.Binaries, replbench.Binary{Label: label, Path: path})
	}
	if o.Docs < 1 || o.Duration <= 0 || o.HotRate < 1 || o.FlowRate < 1 || o.ProbeEvery < 1 || o.ProbeTimeout <= 0 {
		fmt.Fprintf(env.Stderr, "cairn-lab bench-replication: --docs, --duration, --hot-rate, --flow-rate, --probe-every and --probe-timeout: want more than 0\n")
		return exitUsage
	}
	for _, r := range strings.Split(*rows, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n < 1 || n >= len(replbench.Rows) {
			fmt.Fprintf(env.Stderr, "cairn-lab bench-replication: --rows %q: want numbers from 1 to %d\n", *rows, len(replbench.Rows)-1)
			return exitUsage
		}
		o.Rows = append(o.Rows, n)
	}
	if *serveArgs != "" {
		o.Args = strings.Fields(*serveArgs)
	}
	if o.Gateway = *gw; o.Gateway == "" {
		o.Gateway = chaosrun.FindVersitygw()
	}
	if o.Gateway == "" {
		fmt.Fprintf(env.Stderr, "cairn-lab bench-replication: no versitygw binary: pass --versitygw, set CAIRN_VERSITYGW_BIN, or build it with scripts/versitygw.sh\n")
		return exitFail
	}
	if o.Dir = *dir; o.Dir == "" {
		d, err := os.MkdirTemp("", "cairn-replbench-")
		if err != nil {
			return report("bench-replication", err, env)
		}
		o.Dir = d
		if !*keep {
			defer os.RemoveAll(d)
		}
	}
	o.Log = env.Stderr
	rep, err := replbench.Run(ctx, o)
	if err != nil {
		return report("bench-replication", err, env)
	}
	rep.Print(env.Stdout)
	return exitOK
}
