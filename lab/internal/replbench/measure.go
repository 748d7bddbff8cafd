package replbench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one row's figures for one binary. Value is the headline
// figure (what ratios are taken of); Detail says what else was seen.
type Result struct {
	Value  float64
	Unit   string
	Detail string
	Err    error
}

// bench is one binary's run: its cluster and the documents written so far.
type bench struct {
	c    *cluster
	a, b *node
	o    Options
	docs int // distinct keys written to the tenant
}

// waitDrained waits until n's uploader has nothing left (lag 0) and its
// backend calls stopped moving, polling another process.
func (r *bench) waitDrained(ctx context.Context, n *node, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last ops
	for ; ; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("replbench: %s still uploading after %v", n.name, limit)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		lag, err := r.c.lag(ctx, n)
		if err != nil {
			return err
		}
		now, err := r.c.backendOps(ctx, n)
		if err != nil {
			return err
		}
		if lag == 0 && last != nil && now["backend.put"] == last["backend.put"] {
			return nil
		}
		last = now
	}
}

// paced calls f(i) for i = 0, 1, … at rate per second for d, from workers
// goroutines, and returns how many calls were made. A call that fails ends
// the run with its error.
func paced(ctx context.Context, rate int, d time.Duration, workers int, f func(ctx context.Context, i int) error) (int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan int, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
	start := time.Now()
	sent := 0
	t := time.NewTicker(5 * time.Millisecond)
feed:
	for now := start; now.Sub(start) < d; {
		due := int(now.Sub(start).Seconds() * float64(rate))
		for ; sent < due; sent++ {
			select {
			case jobs <- sent:
			case <-ctx.Done():
				break feed
			}
		}
		select {
		case now = <-t.C:
		case <-ctx.Done():
			break feed
		}
	}
	t.Stop()
	close(jobs)
	wg.Wait()
	return sent, context.Cause(ctx)
}

func body(i int) []byte {
	return fmt.Appendf(nil, `{"n":%d,"pad":"the quick brown fox jumps over the lazy dog"}`, i)
}

// requestsPerWrites is row 1: node A's backend calls for 1,000 writes of
// distinct keys, once the uploader has drained.
func (r *bench) requestsPerWrites(ctx context.Context) Result {
	const writes = 1000
	before, err := r.c.backendOps(ctx, r.a)
	if err != nil {
		return Result{Err: err}
	}
	if _, err := paced(ctx, 1<<30, time.Hour, 8, func(ctx context.Context, i int) error {
		if i >= writes {
			return errStop
		}
		_, err := r.c.put(ctx, r.a, fmt.Sprintf("distinct/%06d", i), body(i))
		return err
	}); err != nil && !errors.Is(err, errStop) {
		return Result{Err: err}
	}
	r.docs += writes
	if err := r.waitDrained(ctx, r.a, 5*time.Minute); err != nil {
		return Result{Err: err}
	}
	after, err := r.c.backendOps(ctx, r.a)
	if err != nil {
		return Result{Err: err}
	}
	d := after.minus(before)
	return Result{Value: d.total(), Unit: "requests", Detail: d.String()}
}

var errStop = errors.New("enough")

// hotKey is row 2: one key rewritten Options.HotRate times a second for
// Options.Duration; the uploads (backend puts) per second it cost.
func (r *bench) hotKey(ctx context.Context) Result {
	before, err := r.c.backendOps(ctx, r.a)
	if err != nil {
		return Result{Err: err}
	}
	start := time.Now()
	n, err := paced(ctx, r.o.HotRate, r.o.Duration, 32, func(ctx context.Context, i int) error {
		_, err := r.c.put(ctx, r.a, "hot", body(i))
		return err
	})
	took := time.Since(start)
	if err != nil {
		return Result{Err: err}
	}
	r.docs++
	if err := r.waitDrained(ctx, r.a, time.Minute); err != nil {
		return Result{Err: err}
	}
	after, err := r.c.backendOps(ctx, r.a)
	if err != nil {
		return Result{Err: err}
	}
	d := after.minus(before)
	return Result{Value: d["backend.put"] / took.Seconds(), Unit: "uploads/s",
		Detail: fmt.Sprintf("%.0f writes/s for %v; %s", float64(n)/took.Seconds(), r.o.Duration, d)}
}

// propagation is row 3: writes of distinct keys flow into node A at
// Options.FlowRate a second for Options.Duration; one in
// Options.ProbeEvery is a probe, polled on node B (from its own store,
// with its ETag) until B serves it. The figure is the p99 of the probes'
// delays from A's acknowledgement to B serving it.
func (r *bench) propagation(ctx context.Context) Result {
	type probe struct {
		key, etag string
		acked     time.Time
	}
	var (
		mu      sync.Mutex // guards pending
		pending []probe
		delays  []time.Duration
		writing atomic.Bool
	)
	writing.Store(true)
	side := r.sampleSides(ctx)
	var sweep time.Duration // the longest pass of the poller over the probes waiting: the figures' resolution
	pollDone := make(chan error, 1)
	go func() { // the poller: owned by this function, stopped by the last probe or the timeout
		pollDone <- func() error {
			var deadline time.Time
			for {
				mu.Lock()
				batch := slices.Clone(pending)
				mu.Unlock()
				if !writing.Load() {
					if len(batch) == 0 {
						return nil
					}
					if deadline.IsZero() {
						deadline = time.Now().Add(r.o.ProbeTimeout)
					}
					if time.Now().After(deadline) {
						return nil
					}
				}
				seen := map[string]time.Time{}
				began := time.Now()
				for _, p := range batch {
					ok, err := r.c.hasETag(ctx, r.b, p.key, p.etag)
					if err != nil {
						return err
					}
					if ok {
						seen[p.key] = time.Now()
					}
				}
				mu.Lock()
				sweep = max(sweep, time.Since(began))
				pending = slices.DeleteFunc(pending, func(p probe) bool {
					t, ok := seen[p.key]
					if ok {
						delays = append(delays, t.Sub(p.acked))
					}
					return ok
				})
				mu.Unlock()
				if len(seen) == 0 {
					time.Sleep(20 * time.Millisecond) // polling another process
				}
			}
		}()
	}()
	n, err := paced(ctx, r.o.FlowRate, r.o.Duration, 32, func(ctx context.Context, i int) error {
		key := fmt.Sprintf("flow/%08d", i)
		etag, err := r.c.put(ctx, r.a, key, body(i))
		if err == nil && i%r.o.ProbeEvery == 0 {
			mu.Lock()
			pending = append(pending, probe{key: key, etag: etag, acked: time.Now()})
			mu.Unlock()
		}
		return err
	})
	writing.Store(false)
	perr := <-pollDone
	sides := side()
	r.docs += n
	if err != nil {
		return Result{Err: err}
	}
	if perr != nil {
		return Result{Err: perr}
	}
	slices.Sort(delays)
	if len(delays) == 0 {
		return Result{Err: fmt.Errorf("no probe reached node B within %v", r.o.ProbeTimeout)}
	}
	q := func(f float64) time.Duration { return delays[min(len(delays)-1, int(f*float64(len(delays))))] }
	detail := fmt.Sprintf("p50 %v p99 %v max %v of %d probes; %.0f writes/s", q(0.5).Round(time.Millisecond),
		q(0.99).Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond), len(delays), float64(n)/r.o.Duration.Seconds())
	if len(pending) > 0 {
		detail += fmt.Sprintf("; %d probes not seen within %v", len(pending), r.o.ProbeTimeout)
	}
	detail += fmt.Sprintf("; %s; the poller's longest pass %v", sides, sweep.Round(time.Millisecond))
	return Result{Value: q(0.99).Seconds(), Unit: "s (p99)", Detail: detail}
}

// sampleSides samples both nodes' reconcile status until the returned
// func is called, which says where a write's way to node B waited: A's
// upload lag (its uploader behind the writes) and feed entries waiting
// for an object, B's lag from a feed object's publication to its
// application, and how many objects A published and B read.
func (r *bench) sampleSides(ctx context.Context) (stop func() string) {
	putA0, commitA0, _ := r.c.timings(ctx, r.a)
	_, commitB0, _ := r.c.timings(ctx, r.b)
	pubA0, _, _, _ := r.c.feedCounts(ctx, r.a)
	_, appB0, fbB0, _ := r.c.feedCounts(ctx, r.b)
	ctx, cancel := context.WithCancel(ctx)
	var maxA, maxB feedView
	var lastA, lastB feedView
	done := make(chan struct{})
	go func() { // owned by sampleSides, stopped by stop
		defer close(done)
		for ctx.Err() == nil {
			if a, err := r.c.feedView(ctx, r.a); err == nil {
				lastA = a
				maxA.uploadLag, maxA.pending = max(maxA.uploadLag, a.uploadLag), max(maxA.pending, a.pending)
			}
			if b, err := r.c.feedView(ctx, r.b); err == nil {
				lastB = b
				maxB.peerLag = max(maxB.peerLag, b.peerLag)
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond): // polling other processes
			}
		}
	}()
	return func() string {
		cancel()
		<-done
		putA, commitA, _ := r.c.timings(context.WithoutCancel(ctx), r.a)
		_, commitB, _ := r.c.timings(context.WithoutCancel(ctx), r.b)
		pubA, _, _, _ := r.c.feedCounts(context.WithoutCancel(ctx), r.a)
		_, appB, fbB, _ := r.c.feedCounts(context.WithoutCancel(ctx), r.b)
		return fmt.Sprintf("entries published by A %.0f, applied by B %.0f, B's fallbacks %.0f; ", pubA-pubA0, appB-appB0, fbB-fbB0) + fmt.Sprintf("A: upload lag max %.1fs, backend put mean %.1fms, store commit mean %.1fms, feed entries waiting max %d, %d objects published; "+
			"B: feed lag max %.1fs, store commit mean %.1fms, read up to %d",
			maxA.uploadLag, putA.mean(putA0), commitA.mean(commitA0), maxA.pending, lastA.published,
			maxB.peerLag, commitB.mean(commitB0), lastB.peerSeq)
	}
}

// fill writes Options.Docs documents to node A by NDJSON ingest and waits
// until A has uploaded them.
func (r *bench) fill(ctx context.Context) error {
	const chunk = 5000
	for i := 0; i < r.o.Docs; i += chunk {
		var lines []byte
		for j := i; j < min(i+chunk, r.o.Docs); j++ {
			lines = fmt.Appendf(lines, `{"id":"fill/%08d","n":%d,"pad":"the quick brown fox jumps over the lazy dog"}`+"\n", j, j)
		}
		if err := r.c.ingest(ctx, r.a, lines); err != nil {
			return err
		}
	}
	r.docs += r.o.Docs
	return r.waitDrained(ctx, r.a, 2*time.Hour)
}

// catchUp is row 4: a node started on an empty data directory with the
// same backend, timed until its /readyz answers 200 (caught up), with its
// peak RSS. A sample of the filled keys is then checked on it.
func (r *bench) catchUp(ctx context.Context) Result {
	start := time.Now()
	n, err := r.c.addNode(ctx, "node-c")
	if err != nil {
		return Result{Err: err}
	}
	for !r.c.ready(ctx, n) {
		if err := ctx.Err(); err != nil {
			return Result{Err: err}
		}
		if n.proc.Done() {
			return Result{Err: fmt.Errorf("node-c exited:\n%s", n.proc.Out)}
		}
		time.Sleep(50 * time.Millisecond) // polling another process
	}
	took := time.Since(start)
	rss, err := n.peakRSS()
	if err != nil {
		return Result{Err: err}
	}
	// Spot check: the node serves filled documents from its own store.
	for range 20 {
		key := fmt.Sprintf("fill/%08d", rand.IntN(max(1, r.o.Docs)))
		resp, _, err := r.c.do(ctx, "GET", n.url+"/v1/tenants/"+tenant+"/docs/"+key, nil, nil, false)
		if err != nil {
			return Result{Err: err}
		}
		if resp.StatusCode != 200 || resp.Header.Get("X-Cairn-Read-Through") != "" {
			return Result{Err: fmt.Errorf("node-c ready but %s answers %s (read-through %q)", key, resp.Status, resp.Header.Get("X-Cairn-Read-Through"))}
		}
	}
	return Result{Value: float64(r.docs) / took.Seconds(), Unit: "docs/s",
		Detail: fmt.Sprintf("%d docs in %v, peak RSS %.0f MiB", r.docs, took.Round(time.Millisecond), float64(rss)/(1<<20))}
}

// inSyncRound is row 5: a round of node A over the whole tenant, with
// nothing to do; its duration and the objects it read.
func (r *bench) inSyncRound(ctx context.Context) Result {
	before, err := r.c.backendOps(ctx, r.a)
	if err != nil {
		return Result{Err: err}
	}
	start := time.Now()
	if err := r.c.adminJSON(ctx, r.a, "POST", "/v1/admin/reconcile/run?backend=s3&tenant="+tenant+"&wait=1", nil); err != nil {
		return Result{Err: err}
	}
	took := time.Since(start)
	after, err := r.c.backendOps(ctx, r.a)
	if err != nil {
		return Result{Err: err}
	}
	d := after.minus(before)
	return Result{Value: took.Seconds(), Unit: "s",
		Detail: fmt.Sprintf("%d docs; %.2f%% of the objects read; %s", r.docs, 100*d["backend.get"]/float64(max(1, r.docs)), d)}
}
