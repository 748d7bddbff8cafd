package chaosrun

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/cairnstore/cairn/client"
	"github.com/cairnstore/cairn/internal/backend"
)

// targetNode is the node a network fault or kill hit ("node3→s3").
func targetNode(f Fault) int {
	var i int
	if _, err := fmt.Sscanf(f.Target, "node%d", &i); err != nil {
		return -1
	}
	return i
}

// perNode splits clients over nodes, each node with its own key prefix, so
// every key is written through one node only and its history there is a
// register's.
func perNode(env Env, name string, clients, keys, putPct, delPct int, pause time.Duration) ([]Load, []string) {
	var loads []Load
	var prefixes []string
	for i := range env.Nodes {
		n := clients / env.Nodes
		if i < clients%env.Nodes {
			n++
		}
		p := fmt.Sprintf("%s-n%d-", name, i)
		prefixes = append(prefixes, p)
		loads = append(loads, Load{Clients: n, Keys: keys, Prefix: p, Nodes: []int{i}, PutPct: putPct, DelPct: delPct,
			Seed: env.Seed + uint64(i), Pause: pause})
	}
	return loads, prefixes
}

// keysFor scales a scenario's key count with the run's length (one base
// set per 30s, at most 4000 keys), so that a long run's per-key histories
// stay short enough for porcupine while the total grows.
func keysFor(env Env, base int) int {
	return min(4000, base*max(1, int(env.Duration/(30*time.Second))))
}

// longPause slows each client in long runs, so that the history porcupine
// checks stays within what it can search.
func longPause(env Env) time.Duration {
	if env.Duration > 2*time.Minute {
		return 20 * time.Millisecond
	}
	return 0
}

func runLoad(ctx context.Context, env Env, r *Result) error {
	r.Nodes = env.Nodes
	c, err := startCluster(ctx, env, Options{Nodes: env.Nodes, Chaos: true, Seed: env.Seed})
	if err != nil {
		return err
	}
	defer c.Close()
	defer func() { r.PeakRSS = c.PeakRSS() }() // before Close
	keys := keysFor(env, 40)
	r.Clients = 64
	loads, prefixes := perNode(env, "load", r.Clients, keys, 40, 10, longPause(env))
	r.Schedule = Schedule(env.Seed, env.Duration, env.Nodes, append(append([]string{}, NetKinds...), SimKinds...))
	rec := NewRecorder()
	// The load runs for Duration and on until the last fault is healed:
	// on a loaded machine the schedule's measurements push it late.
	_, stop := drive(ctx, c, rec, 10*time.Minute, loads...)
	defer stop()
	faults := runFaults(ctx, c, rec, r.Schedule)
	sleepUntil(ctx, rec, max(env.Duration, rec.Since()+time.Second))
	stop()
	ops := rec.Ops()
	summarize(r, ops, 0)
	traceFaults(c, faults, ops, targetNode)
	r.Faults = faults
	r.check("client error rate < 0.1%", ErrorRate(r.Counts, 0.001), errorRateDetail(r.Counts))
	var lin []Anomaly
	for i := range env.Nodes {
		lin = append(lin, Linearizable(ops, i, 2*time.Minute)...)
	}
	r.check("linearizable", lin, fmt.Sprintf("every key's history on its node is linearizable (porcupine, %d operations)", len(ops)))
	r.check("no corrupt body served", CorruptServed(ops), "every read returned a body some client wrote")
	if err := convergenceChecks(ctx, env, c, r, ops, prefixes, keys); err != nil {
		return err
	}
	r.check("every fault visible", FaultsVisible(faults), "each fault type moved a node metric and has a trace")
	return nil
}

func runPartition(ctx context.Context, env Env, r *Result) error {
	r.Nodes = env.Nodes
	c, err := startCluster(ctx, env, Options{Nodes: env.Nodes})
	if err != nil {
		return err
	}
	defer c.Close()
	defer func() { r.PeakRSS = c.PeakRSS() }() // before Close
	// Every client writes the same keys, half through node 0 and half
	// through node 1: during the partition each side acknowledges writes
	// the other cannot see, so the same keys get concurrent versions.
	keys := keysFor(env, 24)
	r.Clients = 32
	both := []Load{
		{Clients: 16, Keys: keys, Prefix: "part-", Nodes: []int{0}, PutPct: 60, DelPct: 5, Seed: env.Seed, Pause: longPause(env)},
		{Clients: 16, Keys: keys, Prefix: "part-", Nodes: []int{1}, PutPct: 60, DelPct: 5, Seed: env.Seed + 1, Pause: longPause(env)},
	}
	rec := NewRecorder()
	wait, _ := drive(ctx, c, rec, env.Duration, both...)
	from, until := env.Duration/5, 3*env.Duration/5
	sleepUntil(ctx, rec, from)
	var before [2]Metrics
	for i := range 2 {
		before[i], _ = c.Nodes[i].Scrape(ctx)
		if err := c.Inject(i, "down", 0); err != nil {
			return err
		}
	}
	at := rec.Since()
	sleepUntil(ctx, rec, until)
	var faults []Fault
	for i := range 2 {
		after, _ := c.Nodes[i].Scrape(context.WithoutCancel(ctx))
		faults = append(faults, Fault{Kind: "partition", Target: fmt.Sprintf("node%d→s3", i), At: at, For: rec.Since() - at, Metric: Moved(before[i], after)})
	}
	if err := c.HealAll(); err != nil {
		return err
	}
	healed := rec.Since()
	wait()
	ops := rec.Ops()
	summarize(r, ops, env.Duration)
	traceFaults(c, faults, ops, targetNode)
	r.Faults = faults
	r.note("partition from %v to %v: nodes 0 and 1 cannot reach S3 (their proxies refuse connections); nodes do not talk to each other, so this is also their split", at.Round(time.Millisecond), healed.Round(time.Millisecond))
	r.check("client error rate < 0.1%", ErrorRate(r.Counts, 0.001), errorRateDetail(r.Counts))
	r.check("no corrupt body served", CorruptServed(ops), "every read returned a body some client wrote")
	conflicting := 0
	for _, o := range ops {
		if o.Kind == 'p' && o.OK && o.Call >= at && o.Call < healed {
			conflicting++
		}
	}
	r.assert("conflicting writes made", conflicting > 0, fmt.Sprintf("%d acknowledged writes to the shared keys during the partition, on both sides", conflicting))
	if err := convergenceChecks(ctx, env, c, r, ops, []string{"part-"}, keys); err != nil {
		return err
	}
	r.check("every fault visible", FaultsVisible(faults), "the partition moved a metric on both nodes and has a trace")
	return nil
}

func runNodeFailure(ctx context.Context, env Env, r *Result) error {
	r.Nodes = env.Nodes
	// Checkpoints every 20 keys (the default is 1000), so that a short run
	// kills a round that has passed several.
	const every = 20
	// Full rounds, so that the round lists every key and has checkpoints
	// to pass: an in-sync tenant's digest round lists nothing. The change
	// feed is off, so that the backlog reaches the victim only through
	// that round: a feed poll would apply it first and leave the round
	// nothing to download, and so no checkpoint to pass while running.
	c, err := startCluster(ctx, env, Options{Nodes: env.Nodes, Args: []string{"--reconcile-checkpoint-every", fmt.Sprint(every), "--full-rounds", "--feed-poll", "0"}})
	if err != nil {
		return err
	}
	defer c.Close()
	defer func() { r.PeakRSS = c.PeakRSS() }() // before Close
	victim := c.Nodes[1]
	// A backlog the victim must download: bulk documents ingested on node
	// 0 and uploaded to S3. Downloads happen only in rounds, one key at a
	// time in key order, so with the victim's link slowed its round runs
	// for seconds, passing a checkpoint every 20 keys, when it is killed.
	const bulk = 600
	if err := c.Inject(1, "latency", 2); err != nil {
		return err
	}
	if err := ingest(ctx, c.Nodes[0], "bulk-", bulk, 200); err != nil {
		return fail(c, err)
	}
	if _, err := c.Nodes[0].Reconcile(ctx); err != nil {
		return fail(c, err)
	}
	keys := keysFor(env, 40)
	r.Clients = 32
	loads, prefixes := perNode(env, "fail", r.Clients, keys, 50, 10, longPause(env))
	// The victim's engine runs its uploader and its rounds on one
	// goroutine, and an upload pass drains the change log until it is
	// empty: over the slowed link, a full share of the write load keeps
	// the uploader busy and the round from ever starting. The victim gets
	// four paced clients; the other nodes share the rest.
	moved := loads[1].Clients - 4
	loads[1].Clients, loads[1].Pause = 4, 100*time.Millisecond
	loads[0].Clients += moved
	if err := victim.adminDo(ctx, "POST", "/v1/admin/reconcile/run?tenant="+tenant, nil); err != nil {
		return fail(c, err)
	}
	rec := NewRecorder()
	// The load runs until the scenario stops it: at least Duration, and
	// on past the restart.
	_, stop := drive(ctx, c, rec, 10*time.Minute, loads...)
	defer stop()
	// Kill when the round has passed a checkpoint. On a loaded machine
	// the round can take long to get there: wait up to a minute.
	cursor, seen := "", ""
	for rec.Since() < time.Minute && cursor == "" {
		st, err := victim.Status(ctx)
		if err != nil {
			seen = err.Error()
		} else {
			seen = fmt.Sprintf("%+v", st)
			for _, b := range st.Backends {
				for _, t := range b.Tenants {
					if b.Name == "s3" && t.Tenant == tenant {
						seen = fmt.Sprintf("%+v", t)
						if t.Last != nil {
							seen += fmt.Sprintf("; last round: %+v", *t.Last)
						}
						if t.Running && t.Cursor != "" {
							cursor = t.Cursor
						}
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
	before, _ := victim.Scrape(ctx)
	victim.Kill()
	killedAt := rec.Since()
	time.Sleep(500 * time.Millisecond) // the node stays down for a moment under load
	if err := c.Heal(1); err != nil {  // the rest of the round goes at full speed
		return err
	}
	restart := time.Now()
	if err := victim.Restart(ctx, env.Bin); err != nil {
		return fail(c, err)
	}
	f := Fault{Kind: "kill", Target: "node1", At: killedAt, For: rec.Since() - killedAt}
	after, _ := victim.Scrape(ctx)
	f.Metric = Moved(only(before, "process_start_time_seconds"), only(after, "process_start_time_seconds"))
	// Every key of the victim's clients, read as soon as it is back: a
	// write it acknowledged before the kill and lost shows as a read of an
	// older value, which the linearizability check of its history rejects;
	// the load's later writes would overwrite it before the convergence
	// checks look. One of the reads is the kill's sample trace.
	for i := range keys {
		rec.add(c.do(ctx, victim, Op{Client: -1, Node: 1, Kind: 'g', Key: fmt.Sprintf("%s%03d", prefixes[1], i)}, 5*time.Second, rec))
	}
	// The first round after the restart resumes from the checkpoint. It
	// follows the restarted node's upload of its backlog, which on a
	// loaded machine under -race can take most of a minute: the bound is
	// generous, and a normal run sees the round within seconds.
	resumed, err := resumedRound(ctx, victim, restart, 3*time.Minute)
	if err != nil {
		return fail(c, err)
	}
	sleepUntil(ctx, rec, max(env.Duration, rec.Since()+time.Second))
	stop()
	ops := rec.Ops()
	summarize(r, ops, 0)
	faults := []Fault{f}
	traceFaults(c, faults, ops, targetNode)
	r.Faults = faults
	if cursor != "" {
		r.assert("resumed from checkpoint", resumed != "" && resumed >= cursor, fmt.Sprintf("killed with the s3 round past checkpoint %q; the first round after the restart resumed after %q", cursor, resumed))
	} else {
		r.assert("resumed from checkpoint", false, "the round passed no checkpoint within a minute: resumption was not tested (last seen: "+seen+")")
	}
	var lin []Anomaly
	for i := range env.Nodes {
		lin = append(lin, Linearizable(ops, i, 2*time.Minute)...)
	}
	r.check("linearizable", lin, fmt.Sprintf("every key's history on its node is linearizable across the kill (porcupine, %d operations)", len(ops)))
	r.check("no corrupt body served", CorruptServed(ops), "every read returned a body some client wrote")
	// Requests to node1 while it is down are refused; the client library
	// retries them until it is back on its address. A write in flight when
	// the node died may have been applied, so it is not repeated: those
	// are the errors clients still see.
	r.check("client error rate < 0.1%", ErrorRate(r.Counts, 0.001), errorRateDetail(r.Counts))
	if err := convergenceChecks(ctx, env, c, r, ops, prefixes, keys); err != nil {
		return err
	}
	// The round the kill interrupted completes: the victim has every bulk
	// document node 0 acknowledged.
	missing := missingBulk(ctx, victim, bulk)
	r.assert("interrupted round completed", missing == 0, fmt.Sprintf("%d of %d bulk documents (acknowledged by node 0) missing on the restarted node", missing, bulk))
	r.check("every fault visible", FaultsVisible(faults), "the kill moved a metric and the restarted node traced requests")
	return nil
}

// missingBulk counts the bulk documents (bulk-00000 on, n of them) that
// node cannot read.
func missingBulk(ctx context.Context, node *Node, n int) int {
	missing := 0
	for i := range n {
		if _, err := node.Client().Get(ctx, tenant, fmt.Sprintf("bulk-%05d", i)); err != nil {
			missing++
		}
	}
	return missing
}

// resumedRound watches the victim's first s3 round of the demo tenant
// after t and returns the cursor it resumed after. A round shows the
// checkpoint it resumed from as its cursor as soon as it starts, with
// nothing scanned yet; a round from the first key would show a cursor
// only after scanning that many keys. So a cursor bulk-N seen with fewer
// than N+1 keys scanned proves the resumption, as does the finished
// round's ResumedAfter.
func resumedRound(ctx context.Context, n *Node, t time.Time, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		st, err := n.Status(ctx)
		if err == nil {
			for _, b := range st.Backends {
				for _, tp := range b.Tenants {
					if b.Name != "s3" || tp.Tenant != tenant {
						continue
					}
					if tp.Last != nil && tp.Last.Started.After(t) {
						return tp.Last.ResumedAfter, nil
					}
					var idx int
					if _, err := fmt.Sscanf(tp.Cursor, "bulk-%d", &idx); tp.Running && err == nil && tp.Scanned < idx+1 {
						return tp.Cursor, nil
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
	return "", fmt.Errorf("node%d showed no s3 round within %v of its restart", n.Index, within)
}

// ingest loads count documents named prefix+NNNNN of about size bytes.
func ingest(ctx context.Context, n *Node, prefix string, count, size int) error {
	var b bytes.Buffer
	pad := strings.Repeat("x", size)
	for i := range count {
		fmt.Fprintf(&b, `{"id":"%s%05d","pad":"%s"}`+"\n", prefix, i, pad)
	}
	res, err := n.Client().Ingest(ctx, tenant, &b, client.IngestOptions{KeyField: "id"})
	if err != nil {
		return fmt.Errorf("ingest on node%d: %w", n.Index, err)
	}
	if !res.Complete {
		return fmt.Errorf("ingest on node%d incomplete: %+v", n.Index, res)
	}
	return nil
}

func runCorruption(ctx context.Context, env Env, r *Result) error {
	r.Nodes = 2
	c, err := startCluster(ctx, env, Options{Nodes: 2, FS: true})
	if err != nil {
		return err
	}
	defer c.Close()
	defer func() { r.PeakRSS = c.PeakRSS() }() // before Close
	const keys, damaged = 30, 5
	rec := NewRecorder()
	for i := range keys {
		o := c.do(ctx, c.Nodes[0], Op{Kind: 'p', Key: fmt.Sprintf("cor-%03d", i), Value: fmt.Sprintf(`{"doc":%d,"text":"a healthy copy"}`, i)}, 5*time.Second, rec)
		if !o.OK {
			return fail(c, fmt.Errorf("seeding cor-%03d: status %d", i, o.Status))
		}
		rec.add(o)
	}
	if _, vals, _, err := converge(ctx, c, []string{"cor-"}, keys, env.ConvergeWithin); err != nil || len(Divergence(vals)) > 0 {
		return fail(c, fmt.Errorf("seeding did not converge: %v %v", err, Divergence(vals)))
	}
	mc, err := c.minio()
	if err != nil {
		return err
	}
	var before []Metrics
	for _, n := range c.Nodes {
		m, _ := n.Scrape(ctx)
		before = append(before, m)
	}
	// Damage objects 0..4 on S3 (a flipped body bit, written back through
	// the S3 API: its ETag changes as a real rewrite's would) and files
	// 5..9 in the fs backend (replaced by a copy with a flipped bit in the
	// header checksum, which the fs ETag is made of). Both are found by the
	// nodes that synced them, on their next round, by the hash check.
	var faults []Fault
	for i := range damaged {
		name := prefix + tenant + "/" + fmt.Sprintf("cor-%03d", i)
		if err := corruptS3(ctx, mc, name); err != nil {
			return fail(c, err)
		}
		faults = append(faults, Fault{Kind: "corrupt-s3", Target: "s3:" + name, At: rec.Since()})
	}
	for i := damaged; i < 2*damaged; i++ {
		p, err := fsFile(c.FSDir, fmt.Sprintf("cor-%03d", i))
		if err != nil {
			return fail(c, err)
		}
		if err := corruptFS(p); err != nil {
			return fail(c, err)
		}
		faults = append(faults, Fault{Kind: "corrupt-fs", Target: "disk:" + p, At: rec.Since()})
	}
	// Clients read the damaged keys while the nodes find and repair them.
	r.Clients = 16
	loads := []Load{
		{Clients: 8, Keys: keys, Prefix: "cor-", Nodes: []int{0}, Seed: env.Seed},
		{Clients: 8, Keys: keys, Prefix: "cor-", Nodes: []int{1}, Seed: env.Seed + 1},
	}
	wait, _ := drive(ctx, c, rec, env.Duration, loads...)
	wait()
	took, vals, _, err := converge(ctx, c, []string{"cor-"}, keys, env.ConvergeWithin)
	if err != nil {
		return fail(c, err)
	}
	r.Convergence = took
	detected := 0.0
	moved := map[string]string{} // fault kind → the series that moved on the first node where one did
	for i, n := range c.Nodes {
		m, _ := n.Scrape(ctx)
		for k, v := range m {
			if strings.HasPrefix(k, "cairn_backend_operations_total{") && strings.Contains(k, "outcome=corruption") {
				detected += v - before[i][k]
			}
		}
		for kind, be := range map[string]string{"corrupt-s3": "s3", "corrupt-fs": "disk"} {
			p := "cairn_backend_operations_total{backend=" + be + ","
			if moved[kind] == "" {
				moved[kind] = Moved(only(before[i], p), only(m, p))
			}
		}
	}
	for i := range faults {
		faults[i].Metric, faults[i].For = moved[faults[i].Kind], rec.Since()-faults[i].At
	}
	ops := rec.Ops()
	summarize(r, ops, env.Duration)
	traceFaults(c, faults, ops, func(Fault) int { return 0 })
	r.Faults = faults
	r.assert("detected and counted", detected >= 2*damaged, fmt.Sprintf("%g backend reads failed the hash check (cairn_backend_operations_total{outcome=corruption}) for %d damaged objects", detected, 2*damaged))
	bad := 0
	var why []string
	for i := range 2 * damaged {
		key := fmt.Sprintf("cor-%03d", i)
		var raw []byte
		if i < damaged {
			raw, err = readS3(ctx, mc, prefix+tenant+"/"+key)
		} else {
			var p string
			if p, err = fsFile(c.FSDir, key); err == nil {
				raw, err = os.ReadFile(p)
			}
		}
		if err == nil {
			_, _, err = backend.DecodeObject(raw)
		}
		if err != nil {
			bad++
			why = append(why, key+": "+err.Error())
		}
	}
	r.assert("repaired from a healthy copy", bad == 0, fmt.Sprintf("%d of %d damaged objects still fail verification after the rounds %v", bad, 2*damaged, why))
	r.check("client error rate < 0.1%", ErrorRate(r.Counts, 0.001), errorRateDetail(r.Counts))
	r.check("no corrupt body served", CorruptServed(ops), fmt.Sprintf("%d reads of the damaged keys returned only bodies clients wrote", len(ops)))
	r.check("convergence", Divergence(vals), fmt.Sprintf("both nodes agree on all %d keys", keys))
	r.check("no lost acknowledged writes", lostOnAny(ops, vals), "every seeded document kept its value on every node")
	r.check("every fault visible", FaultsVisible(faults), "the damage moved a metric and reads of the keys were traced")
	r.note("quarantine: a damaged object is never applied or served; the node that holds the key overwrites it (if-match) with its copy. A flipped bit that leaves an object's ETag as it was (the ETag is the header's, which damage to the body leaves as it was) is found when the object is read, or by the background scrub (--scrub-rate), which walks every object in a cycle")
	return nil
}

func corruptS3(ctx context.Context, mc *minio.Client, name string) error {
	raw, err := readS3(ctx, mc, name)
	if err != nil {
		return err
	}
	raw[len(raw)-2] ^= 0x04
	_, err = mc.PutObject(ctx, bucket, name, bytes.NewReader(raw), int64(len(raw)), minio.PutObjectOptions{})
	return err
}

func readS3(ctx context.Context, mc *minio.Client, name string) ([]byte, error) {
	obj, err := mc.GetObject(ctx, bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
}

// fsFile finds the fs backend's file for key (short keys are stored under
// their own name).
func fsFile(dir, key string) (string, error) {
	var found string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == key {
			found = p
			return filepath.SkipAll
		}
		return err
	})
	if err == nil && found == "" {
		err = fmt.Errorf("no file for %s under %s", key, dir)
	}
	return found, err
}

func corruptFS(p string) error {
	raw, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	h, err := backend.ParseHeader(raw)
	if err != nil {
		return err
	}
	raw[h.Len-backend.ChecksumSize] ^= 0x01
	// Replaced, as a restore from a bad copy or a tool's rewrite would:
	// a new file, without the ETag the backend keeps in an xattr.
	tmp := p + ".damaged"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
