package chaosrun

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/client"
)

// The memory scenario's node and the load it is sized for.
//
// The node runs under GOMEMLIMIT=128MiB, which it takes as its whole
// memory limit and divides (node.MemoryBudget): 40 MiB for the binary and
// what no setting sizes, 16 MiB for Pebble's cache and memtables, 2 MiB
// for the key filter, and the remaining 70 MiB as the Go runtime's limit,
// a third of it (23 MiB) for the document cache. What a request holds is
// bounded by the request limits: at most memMaxInFlight requests, each
// with a body of at most memMaxBody (6 MiB in all), and the node's 4
// ingest streams, each decoding one batch at a time.
//
// The load it is sized for is what its limits admit: the tenant may have
// memTenantInFlight requests in flight, a closed-loop client has one, so
// memClients clients and memIngests ingest streams fill the tenant's limit
// without exceeding it; the node lets this one tenant use all of its
// ingest streams (--ingest-tenant-streams), as a node serving one tenant is
// configured. At that load the node should shed nothing the
// client library's retries do not absorb (a client's next request can
// reach the limiter a moment before its previous one has left it). The
// overload phase then offers memOverload clients, four times as many: the
// node must shed what exceeds its limits and stay within its memory.
const (
	memLimit          = 128 << 20
	memMaxInFlight    = 96
	memTenantInFlight = 64
	memMaxBody        = 64 << 10
	memIngests        = 4
	memClients        = memTenantInFlight - memIngests
	memOverload       = 4 * memTenantInFlight
)

// memBound is the bound on the node's peak RSS: 1.1 × the limit. Under
// -race the detector's shadow memory comes on top (the Go documentation
// puts a race build's memory at 5-10x), so a race binary is held to 8x
// the limit only; the default suite runs this scenario with a binary built
// without -race (test/chaos).
func memBound(race bool) int64 {
	if race {
		return 8 * memLimit
	}
	return memLimit + memLimit/10
}

// IsRace reports whether the binary at bin was built with -race (false
// when its build settings cannot be read).
func IsRace(bin string) bool {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

func runMemory(ctx context.Context, env Env, r *Result) error {
	r.Nodes, r.Clients, r.MemLimit = 1, memClients, memLimit
	c, err := startCluster(ctx, env, Options{Nodes: 1,
		Env: []string{fmt.Sprintf("GOMEMLIMIT=%dMiB", memLimit>>20)},
		Args: []string{"--max-in-flight", fmt.Sprint(memMaxInFlight), "--tenant-max-in-flight", fmt.Sprint(memTenantInFlight),
			"--max-body-bytes", fmt.Sprint(memMaxBody), "--ingest-tenant-streams", fmt.Sprint(memIngests)}})
	if err != nil {
		return err
	}
	defer c.Close()
	defer func() { r.PeakRSS = max(r.PeakRSS, c.PeakRSS()) }() // before Close
	n := c.Nodes[0]
	samp := newSampler(n.Pid())
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		samp.run(sctx)
	}()
	defer func() {
		stopSampling()
		<-sampled
	}()

	// Phase 1: the load the node is sized for.
	rec := NewRecorder()
	ingestCtx, stopIngest := context.WithCancel(ctx)
	ingestDone := make(chan struct{})
	go func() {
		defer close(ingestDone)
		ingestLoop(ingestCtx, n, rec, memIngests)
	}()
	wait, _ := drive(ctx, c, rec, env.Duration, Load{Clients: memClients, Keys: 200, Prefix: "mem-", PutPct: 50, Seed: env.Seed})
	wait()
	stopIngest()
	<-ingestDone
	ops := rec.Ops()
	summarize(r, ops, env.Duration)

	// Phase 2: overload, four times the clients. For the first half of it
	// the tenant's whole in-flight limit is held by PUTs whose bodies are
	// held back: every request beyond it must then be shed, however fast or
	// slow the load generator runs beside the node.
	before, _ := n.Scrape(ctx)
	over := NewRecorder()
	overFor := max(2*time.Second, env.Duration/3)
	holdFor := min(overFor/2, 10*time.Second) // well within the node's 30 s read timeout
	held, holdErr := holdLimit(ctx, n, memTenantInFlight)
	wait, _ = drive(ctx, c, over, overFor, Load{Clients: memOverload, Keys: 200, Prefix: "mem-", PutPct: 50, Seed: env.Seed + 1})
	if holdErr == nil {
		select {
		case <-ctx.Done():
		case <-time.After(holdFor):
		}
	}
	heldOK, heldDetail := held.release()
	wait()
	overOps := over.Ops()
	oc := CountErrors(overOps)
	stopSampling()
	<-sampled

	alive := n.Alive()
	peak, _ := procStatus(n.Pid(), "VmHWM:") // the kernel's own peak, since the start
	peak = max(peak, samp.rss)
	r.PeakRSS = peak
	after, _ := n.Scrape(context.WithoutCancel(ctx))
	f := Fault{Kind: "memory-pressure", Target: "node0", At: env.Duration, For: overFor,
		Metric: Moved(only(before, "cairn_http_requests_total"), only(after, "cairn_http_requests_total"))}
	// The sample trace is a shed request's.
	tr := n.Traces()
	for _, o := range overOps {
		if (shed(o.Status) || slices.Contains(o.Retried, "429") || slices.Contains(o.Retried, "503")) && len(tr[o.TraceID]) > 0 {
			f.TraceID = o.TraceID
			break
		}
	}
	faults := []Fault{f}
	r.Faults = faults
	shedAttempts := oc.Shed + oc.Retried["429"] + oc.Retried["503"]
	race := IsRace(env.Bin)
	bound := memBound(race)
	fdBound := memOverload + memIngests + 256
	r.assert("node survived", alive, fmt.Sprintf("the node is alive after %v of %d clients and %d concurrent ingests, then %v of %d clients, under GOMEMLIMIT=%dMiB",
		env.Duration, memClients, memIngests, overFor.Round(time.Millisecond), memOverload, memLimit>>20))
	r.check("client error rate < 0.1%", ErrorRate(r.Counts, 0.001), fmt.Sprintf("at the load the node is sized for (%d clients, %d ingest streams): %s", memClients, memIngests, errorRateDetail(r.Counts)))
	holdDetail := fmt.Sprintf("the tenant's %d in-flight places held by slow PUTs for %v", memTenantInFlight, holdFor)
	if holdErr != nil {
		holdDetail = "the tenant's in-flight places not held: " + holdErr.Error()
	}
	r.assert("excess shed", holdErr == nil && shedAttempts > 0, fmt.Sprintf("overload (%d clients for %v, %s): %d attempts shed with 429/503 (limits: --max-in-flight %d, --tenant-max-in-flight %d); after retries %d of %d requests failed (%.1f%%)",
		memOverload, overFor.Round(time.Millisecond), holdDetail, shedAttempts, memMaxInFlight, memTenantInFlight, oc.Errors, oc.Total, 100*oc.Rate()))
	r.assert("held requests served", holdErr == nil && heldOK, heldDetail)
	r.assert("RSS bounded", peak > 0 && peak <= bound, fmt.Sprintf("peak RSS (VmHWM) %.1f MiB, bound %.1f MiB: %s the %d MiB limit (race build: %v; Go's share of the limit: %s)",
		float64(peak)/(1<<20), float64(bound)/(1<<20), map[bool]string{false: "1.1 ×", true: "8 ×"}[race], memLimit>>20, race, goLimit(after)))
	r.assert("file descriptors bounded", samp.fds > 0 && samp.fds <= fdBound, fmt.Sprintf("peak %d open descriptors ≤ %d (clients + ingests + 256)", samp.fds, fdBound))
	r.check("no corrupt body served", CorruptServed(append(ops, overOps...)), "every read returned a body some client wrote")
	r.check("every fault visible", FaultsVisible(faults), "shedding moved the request counter and a shed request was traced")
	r.note("overload phase, not in the error rate: %d requests, %d failed (%d shed); retried attempts: %s", oc.Total, oc.Errors, oc.Shed, oc.RetriedString())
	return nil
}

// heldPuts are PUTs admitted by the node whose bodies are held back, so
// that each keeps one of the tenant's in-flight places.
type heldPuts struct {
	bodies []*io.PipeWriter
	rest   []byte
	done   chan error // one per PUT: nil when it was stored
}

// holdLimit starts k PUTs (keys memhold-NNN, read by no client) that send
// their headers and the first byte of their bodies, and returns once the
// node sheds a further request for the tenant: then all k hold a place.
// The returned heldPuts is released by release even on error.
func holdLimit(ctx context.Context, n *Node, k int) (*heldPuts, error) {
	body := []byte(`{"held":true}`)
	h := &heldPuts{rest: body[1:], done: make(chan error, k)}
	// The load before may leave requests the node still serves (an ingest
	// whose client gave up): the k PUTs must find every place free.
	if err := untilIdle(ctx, n); err != nil {
		return h, err
	}
	for i := range k {
		pr, pw := io.Pipe()
		h.bodies = append(h.bodies, pw)
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/v1/tenants/%s/docs/memhold-%03d", n.URL, tenant, i), pr)
		if err != nil {
			pr.CloseWithError(err) // release's writes then fail at once
			h.done <- err
			continue
		}
		req.ContentLength = int64(len(body)) // sent before the body: the headers go out at once
		req.Header.Set("Authorization", "Bearer "+n.Token)
		req.Header.Set("Content-Type", "application/json")
		go func() {
			resp, err := n.hc.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
					err = fmt.Errorf("%s", resp.Status)
				}
			}
			h.done <- err
		}()
		go pw.Write(body[:1]) // returns once the transport reads it
	}
	// Polled until the limit is seen full: the PUTs are admitted when the
	// node reads their headers, which nothing here can observe directly.
	probe := fmt.Sprintf("%s/v1/tenants/%s/docs/memhold-probe", n.URL, tenant)
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, probe, nil)
		if err != nil {
			return h, err
		}
		req.Header.Set("Authorization", "Bearer "+n.Token)
		resp, err := n.hc.Do(req)
		if err != nil {
			return h, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			return h, nil
		}
		if time.Now().After(deadline) {
			return h, fmt.Errorf("a GET beside %d held PUTs was still answered %s after 30s", k, resp.Status)
		}
		select {
		case <-ctx.Done():
			return h, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// untilIdle polls the node's metrics until it serves no API request, for
// at most 30 s.
func untilIdle(ctx context.Context, n *Node) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := n.Scrape(ctx)
		if err != nil {
			return err
		}
		busy := 0.0
		for _, v := range only(m, "cairn_http_requests_in_flight") {
			busy += v
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the node still served %.0f requests 30s after the load before ended", busy)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// release sends the rest of every held body and waits for the answers:
// ok when every held PUT was stored.
func (h *heldPuts) release() (ok bool, detail string) {
	for _, pw := range h.bodies {
		go func() {
			pw.Write(h.rest)
			pw.Close()
		}()
	}
	var failed []string
	for range h.bodies {
		if err := <-h.done; err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return false, fmt.Sprintf("%d of %d held PUTs failed once their bodies were sent; first: %s", len(failed), len(h.bodies), failed[0])
	}
	return true, fmt.Sprintf("the %d held PUTs were stored once their bodies were sent", len(h.bodies))
}

// goLimit is the Go runtime's memory limit as the node's metrics show it.
func goLimit(m Metrics) string {
	if v, ok := m["go_gc_gomemlimit_bytes"]; ok {
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	return "not reported"
}

// sampler records a process's peak resident set and open descriptors,
// every 100ms until its context ends.
type sampler struct {
	pid int
	rss int64 // peak VmRSS seen; owned by run until it returns
	fds int   // peak open descriptors seen; likewise
}

func newSampler(pid int) *sampler { return &sampler{pid: pid} }

func (s *sampler) run(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if rss, err := procStatus(s.pid, "VmRSS:"); err == nil {
			s.rss = max(s.rss, rss)
		}
		if fds, err := procFDs(s.pid); err == nil {
			s.fds = max(s.fds, fds)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ingestLoop runs streams concurrent ingests of ~4 MiB each until ctx
// ends, recording each as an operation ('i').
func ingestLoop(ctx context.Context, n *Node, rec *Recorder, streams int) {
	done := make(chan struct{}, streams)
	for s := range streams {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; ctx.Err() == nil; i++ {
				var b bytes.Buffer
				pad := strings.Repeat("m", 1000)
				for j := range 4000 {
					fmt.Fprintf(&b, `{"id":"big-%d-%d-%04d","pad":"%s"}`+"\n", s, i%4, j, pad)
				}
				o := Op{Client: 1000 + s, Kind: 'i', Key: fmt.Sprintf("big-%d", s), TraceID: newTraceID(), Call: rec.Since()}
				ictx, cancel := context.WithTimeout(context.WithValue(context.WithoutCancel(ctx), traceKey{}, o.TraceID), 30*time.Second)
				res, err := n.Client().Ingest(ictx, tenant, &b, client.IngestOptions{KeyField: "id"})
				cancel()
				o.Return = rec.Since()
				var ce *client.Error
				switch {
				case err == nil && res.Complete:
					o.OK, o.Status = true, 200
				case errors.As(err, &ce):
					o.Status = ce.Status
				case err != nil:
					o.Cause = attemptCause(nil, err)
				default:
					o.Cause = "incomplete ingest"
				}
				rec.add(o)
			}
		}()
	}
	for range streams {
		<-done
	}
}

// procStatus reads a size field ("VmRSS:", "VmHWM:") of a process's
// /proc status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no " + field + " in /proc/" + strconv.Itoa(pid) + "/status")
}

// procFDs counts a process's open file descriptors.
func procFDs(pid int) (int, error) {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es), err
}
