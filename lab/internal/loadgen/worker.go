package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// roundTripper sends one request and reads the whole response. put selects
// a PUT; path is the escaped request path; rawGet, when not nil, is the
// whole GET request pre-built. On an error the connection is dropped and
// the next call dials again. Only interrupt may be called concurrently
// with the others: it makes a blocked roundTrip return an error.
type roundTripper interface {
	roundTrip(put bool, path []byte, rawGet []byte) (status int, err error)
	interrupt()
	close()
}

// worker is one closed-loop client: it sends its next request when the
// previous response has been read. It owns everything it records, so the
// hot loop takes no lock; Run merges the workers after they stop.
type worker struct {
	id        int
	cfg       *Config
	t         *target
	rt        roundTripper
	from, end time.Time // the measured window
	putPrefix []byte    // escaped path prefix of this worker's new keys
	path      []byte    // scratch for the next path
	rng       uint64    // xorshift state for mixed
	next      int       // next key index for get and mixed
	hist      Histogram
	status    [600]uint64 // responses by status code; others count as 599
	errors    uint64
	firstErr  error
}

func newWorker(ctx context.Context, id int, c *Config, t *target, from, end time.Time) *worker {
	w := &worker{id: id, cfg: c, t: t, from: from, end: end,
		rng:  uint64(id)*0x9E3779B97F4A7C15 + 1,
		next: id * len(t.paths) / c.Conns}
	w.putPrefix = fmt.Appendf(nil, "%s/w%d/", t.path(c.Prefix), id)
	deadline := end.Add(grace)
	if c.Client == ClientRaw {
		w.rt = &rawConn{addr: t.host, deadline: deadline, t: t}
	} else {
		w.rt = newHTTPConn(ctx, t, deadline)
	}
	return w
}

func (w *worker) run(ctx context.Context) {
	defer w.rt.close()
	stop := context.AfterFunc(ctx, w.rt.interrupt)
	defer stop()
	for n := uint64(0); ctx.Err() == nil; n++ {
		t0 := time.Now()
		if !t0.Before(w.end) {
			return
		}
		put, path, rawGet := w.choose(n)
		status, err := w.rt.roundTrip(put, path, rawGet)
		t1 := time.Now()
		if t0.Before(w.from) || t1.After(w.end) {
			if err != nil {
				w.pause(ctx)
			}
			continue
		}
		if err != nil {
			w.errors++
			if w.firstErr == nil {
				w.firstErr = err
			}
			w.pause(ctx)
			continue
		}
		w.hist.Record(t1.Sub(t0))
		w.status[min(status, len(w.status)-1)]++
	}
}

// pause waits a little after a connection error, so a node that is down
// is not dialled in a tight loop that starves the machine.
func (w *worker) pause(ctx context.Context) {
	t := time.NewTimer(10 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// choose picks the next request: for get, the next key round-robin (each
// worker starts at its own offset); for put, a new key; for mixed, a put
// with probability 1-GetRatio.
func (w *worker) choose(n uint64) (put bool, path, rawGet []byte) {
	switch w.cfg.Op {
	case OpPut:
		w.path = strconv.AppendUint(append(w.path[:0], w.putPrefix...), n, 10)
		return true, w.path, nil
	case OpMixed:
		w.rng ^= w.rng << 13
		w.rng ^= w.rng >> 7
		w.rng ^= w.rng << 17
		put = float64(w.rng>>11)/(1<<53) >= w.cfg.GetRatio
	}
	i := w.next
	w.next = (w.next + 1) % len(w.t.paths)
	w.path = append(w.path[:0], w.t.paths[i]...)
	if !put && w.t.rawGets != nil {
		rawGet = w.t.rawGets[i]
	}
	return put, w.path, rawGet
}

// httpConn sends requests through net/http's client.
type httpConn struct {
	t      *target
	client *http.Client
	ctx    context.Context // the run's, with the connection deadline
	cancel context.CancelFunc
	url    []byte // scratch
}

func newHTTPConn(ctx context.Context, t *target, deadline time.Time) *httpConn {
	// A Transport per worker keeps each worker on its own keep-alive
	// connection, as the raw client does; with one shared Transport a
	// worker could take the idle connection another just returned.
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	return &httpConn{t: t, client: &http.Client{Transport: tr}, ctx: ctx, cancel: cancel}
}

func (h *httpConn) roundTrip(put bool, path, _ []byte) (int, error) {
	h.url = append(append(h.url[:0], h.t.base...), path...)
	method := http.MethodGet
	var body io.Reader
	if put {
		method, body = http.MethodPut, bytes.NewReader(h.t.body)
	}
	req, err := http.NewRequestWithContext(h.ctx, method, string(h.url), body)
	if err != nil {
		return 0, err
	}
	if h.t.auth != "" {
		req.Header["Authorization"] = []string{h.t.auth}
	}
	if put {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// interrupt does nothing: the requests carry the run's context.
func (h *httpConn) interrupt() {}

func (h *httpConn) close() {
	h.cancel()
	h.client.CloseIdleConnections()
}
