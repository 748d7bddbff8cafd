package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	cairncli "github.com/cairnstore/cairn/internal/cli"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/lab/internal/loadgen"
)

const benchUsage = `Usage:
  cairn bench [flags]

Measures a node's HTTP throughput and latency: --conns closed-loop clients,
each on its own keep-alive connection, send requests for --duration (after
--warmup) and print req/s, p50, p90, p99 and p99.9 latency, and failures by
status. The op get first stores --keys documents of --size bytes and reads
them round-robin; put creates a new document with every request (durable
when the node runs with its default --durability sync); mixed reads and
overwrites the seeded keys (--get-ratio of them reads).

With --bare URL, the same workload runs first against a bare net/http
handler at URL serving the same bytes (start one with
'cairn bench-bare --listen ADDR --size N'), and the node's rate is printed
as a share of it.

Connection settings come from flags or CAIRN_URL, CAIRN_TOKEN, CAIRN_TENANT.

Flags:
`

const benchBareUsage = `Usage:
  cairn bench-bare [--listen ADDR] [--size N]

Serves the baseline of 'cairn bench --bare': any GET gets the --size-byte
document a benchmark stores, with cairn's headers (Content-Type, ETag,
Content-Length); any PUT gets 201. No routing, auth, store or middleware.
Prints BARE_URL=http://ADDR and serves until interrupted.

Flags:
`

type benchFlags struct {
	clientFlags
	cfg    loadgen.Config
	op     string
	client string
	bare   string
	label  string
	tsv    bool
}

// benchCommand runs 'cairn bench'.
func benchCommand(ctx context.Context, args []string, env Env) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), benchUsage); fs.PrintDefaults() }
	var f benchFlags
	f.register(fs)
	fs.StringVar(&f.op, "op", "get", "`workload`: get, put or mixed")
	fs.IntVar(&f.cfg.Conns, "conns", 64, "concurrent `connections`, one closed-loop client each")
	fs.DurationVar(&f.cfg.Duration, "duration", 10*time.Second, "measured `time`")
	fs.DurationVar(&f.cfg.Warmup, "warmup", time.Second, "unmeasured `time` before it")
	fs.IntVar(&f.cfg.Size, "size", 200, "document `bytes` (PUT bodies and seeded documents)")
	fs.IntVar(&f.cfg.Keys, "keys", 1000, "`number` of documents get and mixed read")
	fs.Float64Var(&f.cfg.GetRatio, "get-ratio", 0.9, "mixed: share of GETs, in [0, 1]")
	fs.StringVar(&f.client, "client", "raw", "`client`: raw (pre-built requests on plain connections) or http (net/http's client)")
	fs.StringVar(&f.bare, "bare", "", "also measure the bare handler at `URL` (cairn bench-bare), first, and compare")
	fs.BoolVar(&f.cfg.NoSeed, "no-seed", false, "get, mixed: the keys are stored already (same --keys, --size and a fixed --prefix)")
	fs.StringVar(&f.cfg.Prefix, "prefix", "", "key `prefix` (default: bench/ and a fresh suffix)")
	fs.StringVar(&f.label, "label", "node", "`name` of the node in the output")
	fs.BoolVar(&f.tsv, "tsv", false, "print one tab-separated line per target instead of the table")
	args, code, ok := parseArgs(fs, args, env)
	if !ok {
		return code
	}
	if len(args) > 0 {
		fmt.Fprintf(env.Stderr, "cairn bench: unexpected argument %q\n", args[0])
		return exitUsage
	}
	if err := cairncli.SettleEnv(fs, env.Getenv, "url", "token", "tenant"); err != nil {
		fmt.Fprintf(env.Stderr, "cairn bench: %v\n", err)
		return exitUsage
	}
	f.cfg.URL, f.cfg.Token, f.cfg.Tenant = f.url, f.token, f.tenant
	f.cfg.Op, f.cfg.Client = loadgen.Op(f.op), loadgen.Client(f.client)
	if f.token == "" {
		fmt.Fprintln(env.Stderr, "cairn bench: no token: set CAIRN_TOKEN (cairn serve prints one for the demo tenant) or --token")
		return exitUsage
	}
	return report("bench", f.run(ctx, env), env)
}

// benchRun is one measured target.
type benchRun struct {
	name string
	res  *loadgen.Result
}

func (f *benchFlags) run(ctx context.Context, env Env) error {
	var runs []benchRun
	if f.bare != "" {
		bare := f.cfg
		bare.URL, bare.NoSeed = f.bare, true // the bare handler serves any path
		res, err := loadgen.Run(ctx, bare)
		if errors.Is(err, loadgen.ErrConfig) {
			return usageError(err.Error())
		} else if err != nil {
			return fmt.Errorf("bare %s: %w", f.bare, err)
		}
		runs = append(runs, benchRun{"bare", res})
	}
	res, err := loadgen.Run(ctx, f.cfg)
	if errors.Is(err, loadgen.ErrConfig) {
		return usageError(err.Error())
	} else if err != nil {
		return err
	}
	runs = append(runs, benchRun{f.label, res})
	if f.tsv {
		printBenchTSV(env.Stdout, runs)
		return nil
	}
	f.printTable(env.Stdout, runs)
	return nil
}

func (f *benchFlags) printTable(w io.Writer, runs []benchRun) {
	c := f.cfg
	fmt.Fprintf(w, "cairn bench: %s, %d connections, %v measured after %v warmup, %d-byte documents, %s client\n\n",
		c.Op, c.Conns, c.Duration, c.Warmup, c.Size, c.Client)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tresponses\treq/s\tp50\tp90\tp99\tp99.9\tmax\tfailed\t")
	for _, r := range runs {
		h := &r.res.Latency
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t\n", r.name, r.res.Responses(), r.res.Rate(),
			fmtLatency(h.Quantile(0.5)), fmtLatency(h.Quantile(0.9)), fmtLatency(h.Quantile(0.99)),
			fmtLatency(h.Quantile(0.999)), fmtLatency(h.Max()), r.res.Failed())
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, r := range runs {
		fmt.Fprintf(w, "%s: %s\n", r.name, statusLine(r.res))
	}
	if len(runs) == 2 && runs[0].res.Rate() > 0 {
		fmt.Fprintf(w, "%s/bare: %.2f of the bare handler's req/s\n", runs[1].name, runs[1].res.Rate()/runs[0].res.Rate())
	}
}

// printBenchTSV prints, per target: name, op, conns, responses, req/s,
// p50, p90, p99, p99.9 and max in microseconds, and failures.
func printBenchTSV(w io.Writer, runs []benchRun) {
	us := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond)) }
	for _, r := range runs {
		h := &r.res.Latency
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\n", r.name, r.res.Op, r.res.Conns,
			r.res.Responses(), r.res.Rate(), us(h.Quantile(0.5)), us(h.Quantile(0.9)), us(h.Quantile(0.99)),
			us(h.Quantile(0.999)), us(h.Max()), r.res.Failed())
	}
}

// statusLine lists responses by status and connection errors, e.g.
// "200×61234, 429×12; 3 connection errors (first: …)".
func statusLine(r *loadgen.Result) string {
	codes := make([]int, 0, len(r.Status))
	for code := range r.Status {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	var b strings.Builder
	for i, code := range codes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d×%d", code, r.Status[code])
	}
	if len(codes) == 0 {
		b.WriteString("no responses")
	}
	if r.Errors > 0 {
		fmt.Fprintf(&b, "; %d connection errors (first: %v)", r.Errors, r.FirstErr)
	}
	return b.String()
}

// fmtLatency prints three significant digits in a unit that suits.
func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// benchBare serves loadgen.Bare until ctx ends or a signal arrives. Its
// http.Server has cairn's default timeouts, so both pay for the same
// per-request connection deadlines.
func benchBare(ctx context.Context, args []string, env Env) int {
	fs := flag.NewFlagSet("bench-bare", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), benchBareUsage); fs.PrintDefaults() }
	listen := fs.String("listen", "127.0.0.1:7080", "`address` to serve on (port 0: any free port)")
	size := fs.Int("size", 200, "document `bytes`, as cairn bench --size")
	args, code, ok := parseArgs(fs, args, env)
	if !ok {
		return code
	}
	if len(args) > 0 {
		fmt.Fprintf(env.Stderr, "cairn bench-bare: unexpected argument %q\n", args[0])
		return exitUsage
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(env.Stderr, "cairn bench-bare: %v\n", err)
		return exitFail
	}
	t := server.DefaultTimeouts()
	srv := &http.Server{
		Handler:           loadgen.Bare(*size),
		ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read,
		WriteTimeout: t.Write, IdleTimeout: t.Idle, MaxHeaderBytes: t.MaxHeaderBytes,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(env.Stdout, "BARE_URL=http://%s\n", ln.Addr())
	select {
	case <-ctx.Done():
	case <-env.Signals:
	case err := <-served:
		fmt.Fprintf(env.Stderr, "cairn bench-bare: %v\n", err)
		return exitFail
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-served
	if err != nil {
		fmt.Fprintf(env.Stderr, "cairn bench-bare: shutdown: %v\n", err)
		return exitFail
	}
	return exitOK
}
