package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Op is the workload of a run.
type Op string

const (
	OpGet   Op = "get"   // read seeded keys, round-robin
	OpPut   Op = "put"   // create a new key with every request
	OpMixed Op = "mixed" // read seeded keys, overwrite one with probability 1-GetRatio
)

// Client is how requests are sent.
type Client string

const (
	// ClientRaw writes pre-built HTTP/1.1 requests to its own keep-alive
	// connection and parses only the status line and framing headers: about
	// a third of the CPU of net/http's client per request (see doc.go).
	ClientRaw Client = "raw"
	// ClientHTTP uses net/http's client, one idle connection per worker.
	ClientHTTP Client = "http"
)

// Config is one run. The zero values of the optional fields are filled by
// Run with the defaults noted.
type Config struct {
	URL    string // the node, e.g. http://127.0.0.1:7070 (a path is ignored)
	Token  string // bearer token; "" sends no Authorization header
	Tenant string // [demo]

	Op       Op
	Conns    int           // workers, one connection each [64]
	Duration time.Duration // measured time [10s]
	Warmup   time.Duration // unmeasured time before it (0: none)
	Size     int           // body bytes of a PUT and of each seeded document [200]
	Keys     int           // keys read by get and mixed, seeded first [1000]
	GetRatio float64       // share of GETs in mixed, in [0, 1]; 0 is all overwrites (cairn bench's default is 0.9)
	Client   Client        // [ClientRaw]
	// NoSeed skips seeding: the keys exist already (a second run against
	// the same node), or the target serves any path (the bare handler).
	NoSeed bool
	// Prefix starts every key, so runs against one node don't collide
	// [bench/<unix nanos>].
	Prefix string
}

func (c *Config) fill() error {
	if c.Tenant == "" {
		c.Tenant = "demo"
	}
	if c.Conns == 0 {
		c.Conns = 64
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Size == 0 {
		c.Size = 200
	}
	if c.Keys == 0 {
		c.Keys = 1000
	}
	if c.Client == "" {
		c.Client = ClientRaw
	}
	if c.Prefix == "" {
		c.Prefix = "bench/" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	switch {
	case c.Op != OpGet && c.Op != OpPut && c.Op != OpMixed:
		return fmt.Errorf("op %q: want get, put or mixed", c.Op)
	case c.Client != ClientRaw && c.Client != ClientHTTP:
		return fmt.Errorf("client %q: want raw or http", c.Client)
	case c.Conns < 1 || c.Duration <= 0 || c.Warmup < 0 || c.Keys < 1:
		return errors.New("conns, duration and keys must be positive, warmup not negative")
	case c.Size < minSize:
		return fmt.Errorf("size %d: want at least %d bytes (the smallest padded JSON object)", c.Size, minSize)
	case c.GetRatio < 0 || c.GetRatio > 1:
		return fmt.Errorf("get ratio %v: want a number in [0, 1]", c.GetRatio)
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("url %q: want http://HOST:PORT (the load generator speaks plain HTTP/1.1)", c.URL)
	}
	return nil
}

// Result is what a run measured: the requests that started and ended in the
// measured window (as wrk counts them). Latency covers every one that got a
// response, whatever its status, from the first byte written to the last
// byte of the body read.
type Result struct {
	Op       Op
	Conns    int
	Elapsed  time.Duration // the measured window
	Latency  Histogram
	Status   map[int]uint64 // responses by status code
	Errors   uint64         // requests with no response (connection errors)
	FirstErr error          // the first of them
}

// Responses is the number of responses of any status.
func (r *Result) Responses() uint64 { return r.Latency.Count() }

// Rate is responses per second over the measured window.
func (r *Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Responses()) / r.Elapsed.Seconds()
}

// Failed counts responses outside 2xx and 304, and connection errors.
func (r *Result) Failed() uint64 {
	n := r.Errors
	for code, c := range r.Status {
		if code/100 != 2 && code != 304 {
			n += c
		}
	}
	return n
}

// ErrConfig is wrapped by the error of Run for a Config it cannot run.
var ErrConfig = errors.New("invalid configuration")

// grace bounds how long a request may outlive the run before its
// connection is cut.
const grace = 10 * time.Second

// Run seeds the keys (for get and mixed, unless NoSeed), then runs Conns
// closed-loop workers for Warmup plus Duration and returns what they
// measured in Duration. It fails only for a bad Config, a failed seed, or
// ctx ending; request errors are counted in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.fill(); err != nil {
		return nil, fmt.Errorf("loadgen: %w: %w", ErrConfig, err)
	}
	t := newTarget(&cfg)
	if cfg.Op != OpPut && !cfg.NoSeed {
		if err := seed(ctx, &cfg, t); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	workers := make([]*worker, cfg.Conns)
	var wg sync.WaitGroup
	for i := range workers {
		w := newWorker(ctx, i, &cfg, t, measureFrom, end)
		workers[i] = w
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	res := &Result{Op: cfg.Op, Conns: cfg.Conns, Elapsed: cfg.Duration, Status: map[int]uint64{}}
	for _, w := range workers {
		res.Latency.Merge(&w.hist)
		for code, c := range w.status {
			if c > 0 {
				res.Status[code] += c
			}
		}
		res.Errors += w.errors
		if res.FirstErr == nil {
			res.FirstErr = w.firstErr
		}
	}
	return res, nil
}
