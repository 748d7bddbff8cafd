package chaosrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cairnstore/cairn/client"
)

// Load describes the load the drivers put on the cluster.
type Load struct {
	Clients int
	Keys    int    // keys per tenant, named Prefix+"000"…
	Prefix  string // key prefix, so scenarios sharing a cluster do not mix
	Nodes   []int  // the nodes the clients talk to, client i to Nodes[i%len]
	PutPct  int    // share of puts, in percent
	DelPct  int    // share of deletes; the rest are gets
	Seed    uint64
	Timeout time.Duration // per request, retries included [10s]
	// Pause between one client's requests (0: none): keeps a long run's
	// history small enough to check.
	Pause time.Duration
}

// Recorder collects the operations of one run; safe for concurrent use.
type Recorder struct {
	start time.Time
	mu    sync.Mutex // guards ops
	ops   []Op
}

// NewRecorder starts the clock of a run.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Since is the offset of now from the start of the run.
func (r *Recorder) Since() time.Duration { return time.Since(r.start) }

func (r *Recorder) add(o Op) {
	r.mu.Lock()
	r.ops = append(r.ops, o)
	r.mu.Unlock()
}

// Ops returns a copy of the history so far.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Drive runs l's clients until ctx ends, recording every operation.
func (c *Cluster) Drive(ctx context.Context, l Load, rec *Recorder) {
	if l.Timeout == 0 {
		l.Timeout = 10 * time.Second
	}
	if len(l.Nodes) == 0 {
		for i := range c.Nodes {
			l.Nodes = append(l.Nodes, i)
		}
	}
	var wg sync.WaitGroup
	for id := range l.Clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(l.Seed, uint64(id)))
			n := c.Nodes[l.Nodes[id%len(l.Nodes)]]
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("%s%03d", l.Prefix, rng.IntN(l.Keys))
				o := Op{Client: id, Node: n.Index, Key: key, Kind: 'g'}
				switch r := rng.IntN(100); {
				case r < l.PutPct:
					o.Kind, o.Value = 'p', fmt.Sprintf(`{"c":%d,"i":%d,"n":%d}`, id, i, n.Index)
				case r < l.PutPct+l.DelPct:
					o.Kind = 'd'
				}
				rec.add(c.do(ctx, n, o, l.Timeout, rec))
				if l.Pause > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(l.Pause):
					}
				}
			}
		})
	}
	wg.Wait()
}

// do sends o to n and fills in its outcome.
func (c *Cluster) do(ctx context.Context, n *Node, o Op, timeout time.Duration, rec *Recorder) Op {
	o.TraceID = newTraceID()
	// The run's end cancels ctx; a request in flight then still gets its
	// answer, so the history has no cut-off writes of unknown outcome.
	att := &attempts{}
	rctx, cancel := context.WithTimeout(context.WithValue(context.WithValue(context.WithoutCancel(ctx), traceKey{}, o.TraceID), attemptsKey{}, att), timeout)
	defer cancel()
	cl := n.Client()
	o.Call = rec.Since()
	var err error
	switch o.Kind {
	case 'p':
		_, err = cl.Put(rctx, tenant, o.Key, []byte(o.Value))
		o.Found = true
	case 'd':
		err = cl.Delete(rctx, tenant, o.Key)
		o.Found = err == nil
	case 'g':
		var d client.Document
		d, err = cl.Get(rctx, tenant, o.Key)
		o.Value, o.Found = string(d.Body), err == nil
	}
	o.Return = rec.Since()
	o.Retried = att.retried()
	var ce *client.Error
	switch {
	case err == nil:
		o.OK, o.Status = true, 200
	case errors.As(err, &ce):
		o.Status, o.RequestID = ce.Status, ce.RequestID
		switch {
		case ce.Status == 404 && o.Kind != 'p':
			o.OK, o.Found = true, false
		case ce.Status == 429:
			// Shed before the handler ran: not applied.
		case ce.Status >= 500 || ce.Status == 408:
			// A 503 may come from the handler (a store that is closing), not
			// only from the limiter in front of it: the write may have
			// been applied.
			o.Unknown = o.write()
		}
		if o.Kind == 'g' {
			o.Value = ""
		}
	default: // transport error or timeout
		o.Unknown, o.Cause = o.write(), attemptCause(nil, err)
		if o.Kind == 'g' {
			o.Value = ""
		}
	}
	return o
}

// ReadAll reads every key 0..keys-1 with prefix from node n: key → body
// ("" when absent) and key → ETag. A read that fails is an error: the
// caller reads only when the node should answer.
func (c *Cluster) ReadAll(ctx context.Context, n *Node, prefix string, keys int) (map[string]string, map[string]string, error) {
	vals, tags := map[string]string{}, map[string]string{}
	for i := range keys {
		key := fmt.Sprintf("%s%03d", prefix, i)
		d, err := n.Client().Get(ctx, tenant, key)
		switch {
		case errors.Is(err, client.ErrNotFound):
			vals[key], tags[key] = "", ""
		case err != nil:
			return nil, nil, fmt.Errorf("node%d GET %s: %w", n.Index, key, err)
		default:
			vals[key], tags[key] = string(d.Body), d.ETag
		}
	}
	return vals, tags, nil
}

// harnessRetry is the load clients' retry policy: the client library's
// rules (which requests may be repeated) with enough attempts to outlast a
// node's restart (kill, start, open the store: seconds on a loaded
// machine) within the request's timeout.
var harnessRetry = client.RetryPolicy{MaxAttempts: 30, BaseDelay: 50 * time.Millisecond, MaxDelay: time.Second, MaxRetryAfter: 5 * time.Second}

// attemptsKey carries a request's *attempts in its context.
type attemptsKey struct{}

// attempts records the outcome of each attempt of one client call; the
// attempts of a call are sequential, so it needs no lock.
type attempts struct{ causes []string }

// retried is the causes of the attempts that were followed by another:
// every attempt but the last.
func (a *attempts) retried() []string {
	if len(a.causes) < 2 {
		return nil
	}
	return a.causes[:len(a.causes)-1]
}

// countAttempts records each attempt's outcome in the request's
// *attempts: the status of an answer, or the kind of transport error.
type countAttempts struct{ next http.RoundTripper }

func (t countAttempts) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if a, ok := r.Context().Value(attemptsKey{}).(*attempts); ok {
		a.causes = append(a.causes, attemptCause(resp, err))
	}
	return resp, err
}

// attemptCause names an attempt's outcome for the report.
func attemptCause(resp *http.Response, err error) string {
	var op *net.OpError
	switch {
	case err == nil:
		return strconv.Itoa(resp.StatusCode)
	case errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	case errors.As(err, &op):
		return "network: " + op.Op
	}
	return "transport"
}
