package chaosrun

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// runNodeReplace: under load, a node's process is killed (SIGKILL) and
// its data directory wiped, as when a machine and its disk are lost; it
// restarts with the same backends on an empty directory, restores the
// tenant from the catch-up pack another node wrote (then its round), and
// serves again. The replaced node's own clients stop a moment before the
// kill, once the node has uploaded what it acknowledged (what a node never
// uploaded is lost with its disk, by design: docs/runbook.md), and resume
// once it is ready; the other nodes' load runs throughout.
func runNodeReplace(ctx context.Context, env Env, r *Result) error {
	r.Nodes = env.Nodes
	// A pack is written after a round of the tenant once it holds the
	// bulk below, in parts of 64 KiB (several), and not again within the
	// run.
	const bulk = 1000
	c, err := startCluster(ctx, env, Options{Nodes: env.Nodes, Args: []string{
		"--pack-min-docs", fmt.Sprint(bulk), "--pack-part-bytes", "64KiB", "--pack-interval", "1h"}})
	if err != nil {
		return err
	}
	defer c.Close()
	defer func() { r.PeakRSS = c.PeakRSS() }() // before Close
	victim := c.Nodes[1]
	if err := ingest(ctx, c.Nodes[0], "bulk-", bulk, 200); err != nil {
		return fail(c, err)
	}
	if _, err := c.Nodes[0].Reconcile(ctx); err != nil {
		return fail(c, err)
	}
	gen, err := waitForPack(ctx, c, time.Minute)
	if err != nil {
		return fail(c, err)
	}
	keys := keysFor(env, 40)
	r.Clients = 32
	loads, prefixes := perNode(env, "replace", r.Clients, keys, 50, 10, longPause(env))
	rec := NewRecorder()
	var others []Load
	for i, l := range loads {
		if i != victim.Index {
			others = append(others, l)
		}
	}
	_, stopOthers := drive(ctx, c, rec, 10*time.Minute, others...)
	defer stopOthers()
	_, stopVictim := drive(ctx, c, rec, 10*time.Minute, loads[victim.Index])
	defer stopVictim()
	sleepUntil(ctx, rec, env.Duration/3)
	// The victim's clients stop; a round uploads whatever it acknowledged
	// and has not uploaded yet.
	stopVictim()
	if _, err := victim.Reconcile(ctx); err != nil {
		return fail(c, err)
	}
	before, _ := victim.Scrape(ctx)
	victim.Kill()
	killedAt := rec.Since()
	if err := os.RemoveAll(victim.DataDir); err != nil {
		return fail(c, err)
	}
	restart := time.Now()
	if err := victim.Restart(ctx, env.Bin); err != nil {
		return fail(c, err)
	}
	caughtUp, err := waitReady(ctx, victim, 2*time.Minute)
	if err != nil {
		return fail(c, err)
	}
	took := time.Since(restart)
	after, _ := victim.Scrape(ctx)
	f := Fault{Kind: "replace", Target: fmt.Sprintf("node%d", victim.Index), At: killedAt, For: rec.Since() - killedAt}
	f.Metric = Moved(only(before, "process_start_time_seconds"), only(after, "process_start_time_seconds"))
	packReads := 0.0
	for k, v := range after {
		if strings.HasPrefix(k, "cairn_backend_operations_total{") && strings.Contains(k, "op=backend.get_blob") && strings.Contains(k, "outcome=ok") {
			packReads += v
		}
	}
	r.note("node%d replaced: ready %v after its restart on an empty data directory; %g pack blobs read (generation %s)",
		victim.Index, took.Round(time.Millisecond), packReads, gen)
	// Its clients come back, and the reads of its first keys sample a trace.
	_, stopVictim = drive(ctx, c, rec, 10*time.Minute, loads[victim.Index])
	defer stopVictim()
	for i := range 5 {
		rec.add(c.do(ctx, victim, Op{Client: -1, Node: victim.Index, Kind: 'g', Key: fmt.Sprintf("%s%03d", prefixes[victim.Index], i)}, 5*time.Second, rec))
	}
	sleepUntil(ctx, rec, max(env.Duration, rec.Since()+time.Second))
	stopVictim()
	stopOthers()
	ops := rec.Ops()
	summarize(r, ops, 0)
	faults := []Fault{f}
	traceFaults(c, faults, ops, targetNode)
	r.Faults = faults
	r.assert("caught up", caughtUp, fmt.Sprintf("the replaced node answered /readyz 200 within %v of its restart", took.Round(time.Millisecond)))
	r.assert("restored from a pack", packReads >= 2, fmt.Sprintf("the replaced node read %g pack blobs (a manifest and its parts)", packReads))
	r.check("no corrupt body served", CorruptServed(ops), "every read returned a body some client wrote")
	r.check("client error rate < 0.1%", ErrorRate(r.Counts, 0.001), errorRateDetail(r.Counts))
	if err := convergenceChecks(ctx, env, c, r, ops, prefixes, keys); err != nil {
		return err
	}
	missing := missingBulk(ctx, victim, bulk)
	r.assert("replaced node holds the backlog", missing == 0, fmt.Sprintf("%d of %d bulk documents (acknowledged by node 0 before the replacement) missing on the replaced node", missing, bulk))
	r.check("every fault visible", FaultsVisible(faults), "the replacement moved a metric and the replaced node traced requests")
	return nil
}

// waitForPack waits for a complete catch-up pack of the demo tenant in
// the cluster's bucket and returns its generation.
func waitForPack(ctx context.Context, c *Cluster, within time.Duration) (string, error) {
	mc, err := c.minio()
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(within)
	for {
		for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix + "_cairn/pack/" + tenant + "/", Recursive: true}) {
			if o.Err != nil {
				return "", o.Err
			}
			if gen, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, prefix+"_cairn/pack/"+tenant+"/"), "/manifest"); ok {
				return gen, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("chaosrun: no complete catch-up pack of %s within %v", tenant, within)
		}
		time.Sleep(50 * time.Millisecond) // polling another process
	}
}

// waitReady polls the node's admin /readyz until it answers 200; false if
// it did not within d.
func waitReady(ctx context.Context, n *Node, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, "GET", n.Admin+"/readyz", nil)
		if err != nil {
			return false, err
		}
		if resp, err := n.hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true, nil
			}
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
	return false, nil
}
