package replbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Binary is one cairn binary to measure, with the name the table gives it.
type Binary struct {
	Label, Path string
}

// Options configure Run.
type Options struct {
	Binaries []Binary // each is measured in turn on a cluster of its own; ratios are to the first
	Gateway  string   // the versitygw binary
	Dir      string   // where the clusters' data go (a directory per binary)
	Rows     []int    // which rows to run (1–5); empty: all
	Args     []string // extra 'cairn serve' flags for every node

	Docs         int           // row 4 and 5: documents filled into the tenant
	Duration     time.Duration // rows 2 and 3: how long the writes flow
	HotRate      int           // row 2: writes per second of the hot key
	FlowRate     int           // row 3: writes per second of distinct keys
	ProbeEvery   int           // row 3: one write in ProbeEvery is polled on node B
	ProbeTimeout time.Duration // row 3: how long after the writes a probe is waited for
	Log          io.Writer     // progress lines; nil: none
}

func (o *Options) fill() {
	if len(o.Rows) == 0 {
		o.Rows = []int{1, 2, 3, 4, 5}
	}
	if o.Docs <= 0 {
		o.Docs = 100_000
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.HotRate <= 0 {
		o.HotRate = 1000
	}
	if o.FlowRate <= 0 {
		o.FlowRate = 2000
	}
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = 20
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 90 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Rows names the five measurements.
var Rows = [...]string{
	1: "backend requests per 1,000 writes of distinct keys",
	2: "uploads/s, one key rewritten 1,000×/s",
	3: "write on A readable on B, while 2,000 writes/s flow",
	4: "catch-up of an empty node",
	5: "in-sync anti-entropy round",
}

// Report is every row's results, by binary (in Options.Binaries' order).
type Report struct {
	Binaries []Binary
	Rows     []int
	Results  map[int][]Result
}

// Run measures every binary in turn: versitygw and two nodes (A, B) with
// default settings, then the rows in order (rows 4 and 5 add a third,
// empty node and fill the tenant first). A row that fails is reported
// with its error; the others still run.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.fill()
	rep := &Report{Binaries: o.Binaries, Rows: o.Rows, Results: map[int][]Result{}}
	for i, bin := range o.Binaries {
		res, err := runOne(ctx, o, bin, filepath.Join(o.Dir, fmt.Sprintf("bin%d", i)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", bin.Label, err)
		}
		for _, row := range o.Rows {
			rep.Results[row] = append(rep.Results[row], res[row])
		}
	}
	return rep, nil
}

func runOne(ctx context.Context, o Options, bin Binary, dir string) (map[int]Result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c, err := startCluster(ctx, bin.Path, o.Gateway, dir, o.Args)
	if err != nil {
		return nil, err
	}
	defer c.close()
	r := &bench{c: c, o: o}
	if r.a, err = c.addNode(ctx, "node-a"); err != nil {
		return nil, err
	}
	if r.b, err = c.addNode(ctx, "node-b"); err != nil {
		return nil, err
	}
	for _, n := range []*node{r.a, r.b} { // not catching up: reads must not read through
		for !c.ready(ctx, n) {
			if ctx.Err() != nil || n.proc.Done() {
				return nil, fmt.Errorf("%s never ready:\n%s", n.name, n.proc.Out)
			}
			time.Sleep(50 * time.Millisecond) // polling another process
		}
	}
	res := map[int]Result{}
	filled := false
	for _, row := range o.Rows {
		fmt.Fprintf(o.Log, "# %s: row %d: %s\n", bin.Label, row, Rows[row])
		if (row == 4 || row == 5) && !filled {
			start := time.Now()
			if err := r.fill(ctx); err != nil {
				res[row] = Result{Err: err}
				continue
			}
			filled = true
			fmt.Fprintf(o.Log, "# %s: filled %d docs and uploaded them in %v\n", bin.Label, o.Docs, time.Since(start).Round(time.Millisecond))
		}
		var x Result
		switch row {
		case 1:
			x = r.requestsPerWrites(ctx)
		case 2:
			x = r.hotKey(ctx)
		case 3:
			x = r.propagation(ctx)
		case 4:
			x = r.catchUp(ctx)
		case 5:
			x = r.inSyncRound(ctx)
		default:
			x = Result{Err: fmt.Errorf("no row %d", row)}
		}
		res[row] = x
		fmt.Fprintf(o.Log, "# %s: row %d: %s\n", bin.Label, row, x.cell())
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return res, nil
}

func (x Result) cell() string {
	if x.Err != nil {
		return "n/a (" + firstLine(x.Err.Error()) + ")"
	}
	return fmt.Sprintf("%.4g %s", x.Value, x.Unit)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// Print writes the table: a line per row with each binary's figure and
// each later binary's ratio to the first, then each figure's details.
func (rep *Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "row\tmeasure"
	for _, b := range rep.Binaries {
		head += "\t" + b.Label
	}
	for _, b := range rep.Binaries[1:] {
		head += "\t" + b.Label + "/" + rep.Binaries[0].Label
	}
	fmt.Fprintln(tw, head)
	for _, row := range rep.Rows {
		res := rep.Results[row]
		line := fmt.Sprintf("%d\t%s", row, Rows[row])
		for _, x := range res {
			line += "\t" + x.cell()
		}
		for _, x := range res[1:] {
			if x.Err != nil || res[0].Err != nil || res[0].Value == 0 {
				line += "\tn/a"
			} else {
				line += fmt.Sprintf("\t%.3g", x.Value/res[0].Value)
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	for _, row := range rep.Rows {
		for i, x := range rep.Results[row] {
			if x.Err == nil && x.Detail != "" {
				fmt.Fprintf(w, "  row %d, %s: %s\n", row, rep.Binaries[i].Label, x.Detail)
			}
		}
	}
}
