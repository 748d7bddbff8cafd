package chaosrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Env is what every scenario runs with.
type Env struct {
	Bin     string // the cairn binary
	Gateway string // the versitygw binary
	Dir     string // scratch space; each scenario uses a subdirectory
	Seed    uint64
	// Duration is the length of each scenario's load phase.
	Duration time.Duration
	// Nodes is the cluster size of the multi-node scenarios (at least 2).
	Nodes int
	Log   io.Writer // progress lines; nil: none
	// ConvergeWithin bounds the time from the heal until every replica is
	// equal: the convergence invariant.
	ConvergeWithin time.Duration
}

func (e Env) logf(format string, args ...any) {
	if e.Log != nil {
		fmt.Fprintf(e.Log, format+"\n", args...)
	}
}

// Scenario is one named chaos scenario.
type Scenario struct {
	Name  string
	About string
	run   func(ctx context.Context, env Env, r *Result) error
}

// Scenarios are the seed's five, in order, and node-replace.
var Scenarios = []Scenario{
	{"load", "mixed CRUD from 64 clients while the S3 links suffer latency, timeouts, resets and bandwidth limits (toxiproxy) and the nodes' simulators fail and throttle S3 calls; each node's per-key history is linearizable", runLoad},
	{"partition", "two nodes lose the shared backend (and so each other) while clients write conflicting updates to both; after the heal they converge without ping-pong", runPartition},
	{"node-failure", "kill -9 a node in the middle of a reconciliation round under load, restart it: no acknowledged write is lost and the round resumes from its checkpoint", runNodeFailure},
	{"corruption", "damage objects on S3 and files in the shared fs backend: each is detected by its hash, counted, never served, and repaired from a node's copy", runCorruption},
	{"memory", "GOMEMLIMIT=128MiB: the load the node is sized for (60 clients, 4 large ingests) sees < 0.1% errors, an overload of 256 clients is shed (429/503) instead of killing the node; peak RSS stays within 1.1x the limit, descriptors bounded", runMemory},
	{"node-replace", "kill -9 a node under load and wipe its data directory; restarted on the same backends it restores from a catch-up pack and its round, and every invariant holds", runNodeReplace},
}

// Lookup returns the scenario called name.
func Lookup(name string) (Scenario, bool) {
	for _, s := range Scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Run runs the scenario and returns its result; a harness failure (a
// process that would not start) is in Result.Error, with the logs.
func (s Scenario) Run(ctx context.Context, env Env) Result {
	if env.Nodes < 2 {
		env.Nodes = 2
	}
	if env.ConvergeWithin == 0 {
		env.ConvergeWithin = 60 * time.Second
	}
	r := Result{Scenario: s.Name, Seed: env.Seed}
	start := time.Now()
	env.Dir = filepath.Join(env.Dir, s.Name)
	if err := os.MkdirAll(env.Dir, 0o755); err != nil {
		r.Error = err.Error()
		return r
	}
	env.logf("chaos: %s: %s", s.Name, s.About)
	if err := s.run(ctx, env, &r); err != nil {
		r.Error = err.Error()
	}
	r.Wall = time.Since(start)
	env.logf("chaos: %s: done in %v", s.Name, r.Wall.Round(time.Millisecond))
	return r
}

// startCluster starts a cluster for a scenario; on failure the error
// carries the processes' output.
func startCluster(ctx context.Context, env Env, o Options) (*Cluster, error) {
	o.Bin, o.Gateway, o.Dir = env.Bin, env.Gateway, env.Dir
	c, err := Start(ctx, o)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// fail wraps a harness error with the cluster's logs.
func fail(c *Cluster, err error) error {
	return fmt.Errorf("%w\n%s", err, c.Logs())
}

// summarize fills in the load figures of r from the history; load is
// the length of the load phase, 0 to take it from the history.
func summarize(r *Result, ops []Op, load time.Duration) {
	r.Ops = len(ops)
	if load == 0 && len(ops) > 0 {
		first, last := ops[0].Call, ops[0].Return
		for _, o := range ops {
			first, last = min(first, o.Call), max(last, o.Return)
		}
		load = last - first
	}
	if load > 0 {
		r.Throughput = float64(len(ops)) / load.Seconds()
	}
	var lat []time.Duration
	for _, o := range ops {
		if o.OK {
			lat = append(lat, o.Return-o.Call)
		}
	}
	r.P50, r.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	r.Counts = CountErrors(ops)
}

// runFaults runs the schedule against the cluster's links while load
// runs: each fault is injected on its target's S3 link, held, measured (the
// metric that moved on the target node) and healed. It returns when the
// schedule is done or ctx ends; every link is healed on return.
func runFaults(ctx context.Context, c *Cluster, rec *Recorder, sched []Event) []Fault {
	defer func() { _ = c.HealAll() }()
	var out []Fault
	for _, e := range sched {
		if !sleepUntil(ctx, rec, e.At) {
			break
		}
		n := c.Nodes[e.Target]
		before, _ := n.Scrape(ctx)
		f := Fault{Kind: e.Kind, Target: fmt.Sprintf("node%d→s3", e.Target), At: rec.Since(), For: e.For}
		sim := strings.HasPrefix(e.Kind, "sim-")
		var err error
		if sim {
			err = c.SimInject(ctx, e.Target, e.Kind)
		} else {
			err = c.Inject(e.Target, e.Kind, e.Param)
		}
		if err != nil {
			f.Metric = "inject failed: " + err.Error()
			out = append(out, f)
			continue
		}
		sleepUntil(ctx, rec, f.At+e.For)
		if sim {
			_ = c.SimHeal(context.WithoutCancel(ctx), e.Target)
		} else {
			_ = c.Heal(e.Target)
		}
		// A backend call is counted when it ends, after its retries: give
		// the calls the fault held up a moment to finish before scraping.
		time.Sleep(300 * time.Millisecond)
		after, _ := n.Scrape(context.WithoutCancel(ctx))
		f.Metric = Moved(before, after)
		if sim { // the simulator's own counter names the fault it injected
			if m := Moved(only(before, "cairn_chaos_injected_total"), only(after, "cairn_chaos_injected_total")); m != "" {
				f.Metric = m
			}
		}
		out = append(out, f)
	}
	return out
}

// sleepUntil waits until the run's offset at; false if ctx ended first.
func sleepUntil(ctx context.Context, rec *Recorder, at time.Duration) bool {
	d := at - rec.Since()
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// traceFaults gives each fault a sample trace id: a request the target
// node served while the fault was on (a failed one if any), whose span the
// node recorded in its trace file. node maps a fault to the node index.
// The json exporter writes spans in batches, so the files are read again,
// for up to 10s, while a fault still has no trace.
func traceFaults(c *Cluster, faults []Fault, ops []Op, node func(Fault) int) {
	for attempt := 0; ; attempt++ {
		traces := map[int]map[string][]span{}
		missing := 0
		for i := range faults {
			f := &faults[i]
			ni := node(*f)
			if ni < 0 || f.TraceID != "" {
				continue
			}
			if traces[ni] == nil {
				traces[ni] = c.Nodes[ni].Traces()
			}
			if best := sampleOp(ops, traces[ni], ni, f.At, f.At+f.For+2*time.Second); best != nil {
				f.TraceID = best.TraceID
			} else {
				missing++
			}
		}
		if missing == 0 || attempt == 10 {
			return
		}
		time.Sleep(time.Second) // the exporter's next batch
	}
}

// sampleOp picks a request to node ni called in [from, to] whose trace is
// in tr, preferring one that failed.
func sampleOp(ops []Op, tr map[string][]span, ni int, from, to time.Duration) *Op {
	var best *Op
	for j := range ops {
		o := &ops[j]
		if o.Node != ni || o.Call < from || o.Call > to || len(tr[o.TraceID]) == 0 {
			continue
		}
		if best == nil || (best.OK && !o.OK) {
			best = o
		}
		if !best.OK {
			break
		}
	}
	return best
}

// converge runs reconciliation rounds on every node until all of them
// answer the same value and version (ETag) for every key, or within
// passes. Equal values alone are not enough (see Unsettled): stopping
// there would leave a resolution for the rounds after convergence to
// bring, which the ping-pong check counts. It returns how long that took
// and each node's final values and ETags.
func converge(ctx context.Context, c *Cluster, prefixes []string, keys int, within time.Duration) (time.Duration, []map[string]string, []map[string]string, error) {
	start := time.Now()
	for {
		c.roundErrors = c.roundErrors[:0]
		for _, n := range c.Nodes {
			rs, err := n.Reconcile(ctx)
			if err != nil {
				return 0, nil, nil, err
			}
			for _, r := range rs {
				if r.Error != "" {
					c.roundErrors = append(c.roundErrors, fmt.Sprintf("node%d, backend %s, tenant %s: %s (needs confirm: %v)",
						n.Index, r.Backend, r.Tenant, r.Error, r.NeedsConfirm))
				}
			}
		}
		vals, tags, err := readAll(ctx, c, prefixes, keys)
		if err != nil {
			return 0, nil, nil, err
		}
		if len(Divergence(vals))+len(Unsettled(tags)) == 0 || time.Since(start) > within {
			return time.Since(start), vals, tags, nil
		}
	}
}

// readAll reads every key on every node.
func readAll(ctx context.Context, c *Cluster, prefixes []string, keys int) ([]map[string]string, []map[string]string, error) {
	var vals, tags []map[string]string
	for _, n := range c.Nodes {
		v, t := map[string]string{}, map[string]string{}
		for _, p := range prefixes {
			pv, pt, err := c.ReadAll(ctx, n, p, keys)
			if err != nil {
				return nil, nil, err
			}
			for k := range pv {
				v[k], t[k] = pv[k], pt[k]
			}
		}
		vals, tags = append(vals, v), append(tags, t)
	}
	return vals, tags, nil
}

// settle runs rounds after convergence and records, for every node and
// key, the ETag seen after each: the ping-pong checker's input. It also
// returns the conflicts and transfers those rounds still made, which must
// be none once the replicas agree.
func settle(ctx context.Context, c *Cluster, prefixes []string, keys int, rounds int, first []map[string]string) (map[string][]string, int, error) {
	seq := map[string][]string{}
	add := func(tags []map[string]string) {
		for i, t := range tags {
			for k, v := range t {
				seq[fmt.Sprintf("node%d:%s", i, k)] = append(seq[fmt.Sprintf("node%d:%s", i, k)], v)
			}
		}
	}
	add(first)
	moved := 0
	for range rounds {
		for _, n := range c.Nodes {
			rs, err := n.Reconcile(ctx)
			if err != nil {
				return nil, 0, err
			}
			for _, r := range rs {
				moved += r.Conflicts + r.Actions["upload"] + r.Actions["download"]
			}
		}
		_, tags, err := readAll(ctx, c, prefixes, keys)
		if err != nil {
			return nil, 0, err
		}
		add(tags)
	}
	return seq, moved, nil
}

// lostOnAny runs LostWrites on each node's final values. Convergence is
// checked separately, and a run that did not converge must not be told
// its writes are all there because the first node has them.
func lostOnAny(history []Op, vals []map[string]string) []Anomaly {
	var out []Anomaly
	for i, v := range vals {
		for _, a := range LostWrites(history, v) {
			if len(vals) > 1 {
				a.Detail = fmt.Sprintf("on node%d: %s", i, a.Detail)
			}
			out = append(out, a)
		}
	}
	return out
}

// convergenceChecks runs the checks every multi-node scenario ends with:
// convergence within the bound, no lost acknowledged write, no ping-pong.
func convergenceChecks(ctx context.Context, env Env, c *Cluster, r *Result, ops []Op, prefixes []string, keys int) error {
	took, vals, tags, err := converge(ctx, c, prefixes, keys, env.ConvergeWithin)
	if err != nil {
		return fail(c, err)
	}
	r.Convergence = took
	div := append(Divergence(vals), Unsettled(tags)...)
	if len(div) > 0 {
		for _, e := range c.roundErrors {
			div = append(div, Anomaly{Check: "round-error", Detail: "the last rounds failed: " + e})
		}
	}
	r.check("convergence", div, fmt.Sprintf("all %d replicas hold the same version of each of %d keys %v after the heal (bound %v)", len(vals), len(vals[0]), took.Round(time.Millisecond), env.ConvergeWithin))
	r.check("no lost acknowledged writes", lostOnAny(ops, vals), fmt.Sprintf("on every node, every key's final value is its last acknowledged write or a write concurrent with it (%d keys)", len(vals[0])))
	seq, moved, err := settle(ctx, c, prefixes, keys, 3, tags)
	if err != nil {
		return fail(c, err)
	}
	pp := PingPong(seq)
	if moved > 0 {
		pp = append(pp, Anomaly{Check: "ping-pong", Detail: fmt.Sprintf("%d conflicts or transfers in the 3 rounds after convergence", moved)})
	}
	r.check("no conflict ping-pong", pp, "3 more rounds on every node after convergence: no conflict, no transfer, no version came back")
	return nil
}

// drive runs the load for d in the background; wait returns when it is
// over, stop ends it early (and then waits).
func drive(ctx context.Context, c *Cluster, rec *Recorder, d time.Duration, loads ...Load) (wait, stop func()) {
	lctx, cancel := context.WithTimeout(ctx, d)
	var wg sync.WaitGroup
	for _, l := range loads {
		wg.Go(func() { c.Drive(lctx, l, rec) })
	}
	wait = func() {
		wg.Wait()
		cancel()
	}
	stop = func() {
		cancel()
		wg.Wait()
	}
	return wait, stop
}
