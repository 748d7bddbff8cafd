package cli

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"time"

	cairncli "github.com/cairnstore/cairn/internal/cli"
	"github.com/cairnstore/cairn/lab/internal/chaosrun"
)

const chaosUsage = `Usage: cairn chaos run [flags]

Starts a local cluster on loopback (a versitygw S3 server, a toxiproxy proxy
per node→S3 link, and node processes of the cairn binary: --cairn, or the
cairn that runs this command), drives load, injects
faults on a schedule derived from the seed, heals, and checks the invariants.
Prints a table and writes the report as JSON. Exit status 1 if any invariant
failed. See docs/chaos.md for how to read the report.

Scenarios: %s

Flags:
`

func chaosCommand(ctx context.Context, args []string, env Env) int {
	fs := flag.NewFlagSet("chaos run", flag.ContinueOnError)
	scenario := fs.String("scenario", "all", "`name` of the scenario to run, or all")
	seed := fs.Uint64("seed", 0, "seed of the fault schedule and the load (0: a random one, printed)")
	duration := fs.Duration("duration", 30*time.Second, "length of each scenario's load `phase`")
	nodes := fs.Int("nodes", 3, "nodes in the multi-node scenarios (at least 2)")
	jsonOut := fs.String("json", "chaos-report.json", "write the report as JSON to this `file` (empty: none)")
	dir := fs.String("dir", "", "scratch `directory` for data, the bucket and traces (default: a temporary one, removed unless --keep)")
	keep := fs.Bool("keep", false, "keep the scratch directory")
	gw := fs.String("versitygw", "", "versitygw `binary` (default: $CAIRN_VERSITYGW_BIN or .tools/versitygw-*/ above the working directory)")
	cairnBin := fs.String("cairn", "", "cairn `binary` the nodes run (default: $CAIRN_BIN, which cairn sets to itself, else cairn beside this command or on PATH)")
	converge := fs.Duration("converge-within", time.Minute, "the convergence invariant's bound, from the heal until every replica is equal")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), chaosUsage, scenarioNames())
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "run" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
			fs.SetOutput(env.Stdout)
			fs.Usage()
			return exitOK
		}
		fmt.Fprintf(env.Stderr, "cairn chaos: want 'cairn chaos run [flags]'\n")
		return exitUsage
	}
	if _, code, ok := parseArgs(fs, args[1:], env); !ok {
		return code
	}
	var run []chaosrun.Scenario
	if *scenario == "all" {
		run = chaosrun.Scenarios
	} else {
		for _, name := range strings.Split(*scenario, ",") {
			s, ok := chaosrun.Lookup(name)
			if !ok {
				fmt.Fprintf(env.Stderr, "cairn chaos run: --scenario %q: want one of %s, or all\n", name, scenarioNames())
				return exitUsage
			}
			run = append(run, s)
		}
	}
	if *nodes < 2 || *duration < time.Second {
		fmt.Fprintf(env.Stderr, "cairn chaos run: want --nodes ≥ 2 and --duration ≥ 1s\n")
		return exitUsage
	}
	if *gw == "" {
		*gw = chaosrun.FindVersitygw()
	}
	if *gw == "" {
		fmt.Fprintf(env.Stderr, "cairn chaos run: no versitygw binary: pass --versitygw, set CAIRN_VERSITYGW_BIN, or build it with scripts/versitygw.sh\n")
		return exitFail
	}
	bin := *cairnBin
	if bin == "" {
		bin = findCairn(env.Getenv)
	}
	if bin == "" {
		fmt.Fprintf(env.Stderr, "cairn chaos run: no cairn binary: pass --cairn, set CAIRN_BIN, or run it as 'cairn chaos run'\n")
		return exitFail
	}
	var err error
	if *seed == 0 {
		*seed = rand.Uint64N(1<<31) + 1
	}
	scratch := *dir
	if scratch == "" {
		scratch, err = os.MkdirTemp("", "cairn-chaos-")
		if err != nil {
			fmt.Fprintf(env.Stderr, "cairn chaos run: %v\n", err)
			return exitFail
		}
		if !*keep {
			defer os.RemoveAll(scratch)
		}
	}
	cmdline := fmt.Sprintf("cairn chaos run --scenario %s --seed %d --duration %v --nodes %d", *scenario, *seed, *duration, *nodes)
	fmt.Fprintf(env.Stderr, "%s (scratch %s)\n", cmdline, scratch)
	rp := chaosrun.Report{Command: cmdline, Seed: *seed, Started: time.Now().UTC(), Duration: duration.String()}
	// SIGINT or SIGTERM stops the run: the cluster is torn down, the
	// scratch directory removed, and the run reported as interrupted, not
	// as a failed invariant.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var interrupted atomic.Bool
	go func() {
		select {
		case sig := <-env.Signals:
			fmt.Fprintf(env.Stderr, "cairn chaos run: %v: stopping the cluster\n", sig)
			interrupted.Store(true)
			cancel()
		case <-ctx.Done():
		}
	}()
	for _, s := range run {
		e := chaosrun.Env{Bin: bin, Gateway: *gw, Dir: scratch, Seed: *seed, Duration: *duration, Nodes: *nodes,
			Log: env.Stderr, ConvergeWithin: *converge}
		rp.Results = append(rp.Results, s.Run(ctx, e))
		if ctx.Err() != nil {
			break
		}
	}
	if interrupted.Load() {
		fmt.Fprintf(env.Stderr, "cairn chaos run: interrupted: no report (the scenario under way did not finish; its checks say nothing)\n")
		return exitFail
	}
	rp.Table(env.Stdout)
	if *jsonOut != "" {
		f, err := os.Create(*jsonOut)
		if err == nil {
			err = rp.JSON(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(env.Stderr, "cairn chaos run: writing %s: %v\n", *jsonOut, err)
			return exitFail
		}
		fmt.Fprintf(env.Stderr, "report written to %s\n", *jsonOut)
	}
	if !rp.OK() {
		return exitFail
	}
	return exitOK
}

func scenarioNames() string {
	var names []string
	for _, s := range chaosrun.Scenarios {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// findCairn returns the cairn binary for the nodes: $CAIRN_BIN (cairn sets
// it to itself when it runs this command), else cairn beside this
// executable, else the first on PATH, else "".
func findCairn(getenv func(string) string) string {
	self, _ := os.Executable() // "": look on PATH only
	p, _ := cairncli.FindCommand("cairn", "CAIRN_BIN", self, getenv)
	return p
}
