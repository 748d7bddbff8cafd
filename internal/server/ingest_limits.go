package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
)

// IngestLimits bound a node's bulk-ingestion streams, so that slow or many
// streams of one tenant cannot keep the others from ingesting. Zero fields
// take the defaults in brackets.
type IngestLimits struct {
	// Streams is how many ingest streams the node serves at once [4]: each
	// holds a few chunk buffers of twice the record limit, and one stream
	// already keeps the store's committer busy. More get 503.
	Streams int
	// TenantStreams is how many of those one tenant may hold at once [half
	// of Streams, rounded up]; more get 429. With the defaults, a tenant
	// that fills its share leaves two streams to the others.
	TenantStreams int
	// MinRate is the slowest a stream may send its body, in bytes per
	// second of waiting for the client [500, as Apache's mod_reqtimeout];
	// negative: no minimum. A slower stream is ended with 408 too_slow.
	MinRate int64
	// RateWindow is how much waiting for the client MinRate is averaged
	// over [10s]: a stream is judged each time it has kept the node
	// waiting that long. Time the node spends committing is not counted.
	RateWindow time.Duration
}

// Defaults of IngestLimits.
const (
	DefaultIngestStreams    = 4
	DefaultIngestMinRate    = 500
	DefaultIngestRateWindow = 10 * time.Second
)

// withDefaults fills in zero fields and keeps TenantStreams within Streams.
func (l IngestLimits) withDefaults() IngestLimits {
	if l.Streams <= 0 {
		l.Streams = DefaultIngestStreams
	}
	if l.TenantStreams <= 0 {
		l.TenantStreams = (l.Streams + 1) / 2
	}
	l.TenantStreams = min(l.TenantStreams, l.Streams)
	if l.MinRate == 0 {
		l.MinRate = DefaultIngestMinRate
	}
	if l.RateWindow <= 0 {
		l.RateWindow = DefaultIngestRateWindow
	}
	return l
}

// ingestSlots admits ingest streams: at most limit on the node and at most
// perTenant for one tenant. A per-tenant share rather than a queue keeps
// admission immediate (a refused client retries after Retry-After) while
// no tenant can hold every slot; MinRate bounds how long a slow stream
// keeps its slot.
type ingestSlots struct {
	limit, perTenant int

	mu       sync.Mutex // guards the following
	inUse    int
	byTenant map[string]int // streams per tenant; no entry for none
}

func newIngestSlots(l IngestLimits) *ingestSlots {
	return &ingestSlots{limit: l.Streams, perTenant: l.TenantStreams, byTenant: map[string]int{}}
}

// acquire takes a slot for tenant. Outcomes: a release function to call
// when the stream ends; a 429 when the tenant holds its share; a 503 when
// every slot of the node is taken.
func (s *ingestSlots) acquire(tenant string) (release func(), err error) {
	c := fault.Context{Op: "ingest", Tenant: tenant}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.byTenant[tenant] >= s.perTenant:
		return nil, withStatus(http.StatusTooManyRequests, fault.Exhausted.String(), fault.New(fault.Exhausted, c,
			fmt.Sprintf("tenant %s already has %d of the node's %d ingest streams, its share; try again when one ends",
				tenant, s.byTenant[tenant], s.limit)))
	case s.inUse >= s.limit:
		return nil, fault.New(fault.Exhausted, c,
			fmt.Sprintf("%d ingest streams are in progress; try again later", s.limit))
	}
	s.inUse++
	s.byTenant[tenant]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.inUse--
			if s.byTenant[tenant]--; s.byTenant[tenant] == 0 {
				delete(s.byTenant, tenant)
			}
		})
	}, nil
}

// pacedBody is an ingest stream's request body as Process reads it. It
// keeps the first read error, so that the reply is classified by what
// happened to the body rather than by the context cancellation a failed
// read causes, and it ends a stream that sends slower than minRate.
//
// The rate is measured over the time spent inside Read, that is, waiting
// for the client: while the node commits, Process stops reading (it holds
// a bounded number of batches), and that time is the node's, not the
// client's. Each time the stream has kept the node waiting for a window,
// the bytes of that window are judged and a new window begins. A stream
// that sends nothing at all blocks in Read until the connection's read
// deadline, and fails with a timeout (408 timeout); one that sends too
// little fails here (408 too_slow).
//
// Process reads from one goroutine at a time, so nothing here needs a lock;
// the handler reads err and slow after Process returned.
type pacedBody struct {
	r       io.Reader
	now     func() time.Time
	minRate int64 // bytes per second; <= 0: none
	window  time.Duration

	waited time.Duration // spent in Read in the current window
	got    int64         // bytes read in the current window
	err    error         // the first read error other than io.EOF
	eof    bool          // a read returned io.EOF: the body was read to its end
	slow   *tooSlowError // set when the stream was ended for its rate
	// stop, when closed, ends the stream at the next read with
	// errShuttingDown: the server is draining.
	stop <-chan struct{}
}

// draining reports whether the server started draining.
func (b *pacedBody) draining() bool {
	select {
	case <-b.stop:
		return true
	default:
		return false
	}
}

// errShuttingDown ends an ingest stream when the server starts draining.
var errShuttingDown = errors.New("the node is shutting down")

func (b *pacedBody) Read(p []byte) (int, error) {
	if b.draining() {
		if b.err == nil {
			b.err = errShuttingDown
		}
		return 0, errShuttingDown
	}
	start := b.now()
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	if err != nil && err != io.EOF && b.draining() {
		// The drain ended a read that waited on the client (the handler's
		// watch set the read deadline to now).
		err = errShuttingDown
	}
	if err != nil && !errors.Is(err, io.EOF) {
		if b.err == nil {
			b.err = err
		}
		return n, err
	}
	if b.minRate <= 0 {
		return n, err
	}
	b.waited += b.now().Sub(start)
	b.got += int64(n)
	if b.waited < b.window {
		return n, err
	}
	if err == nil && float64(b.got) < float64(b.minRate)*b.waited.Seconds() {
		// The bytes of this read are not processed: the stream ends at
		// the last record the reply names as durable.
		b.slow = &tooSlowError{got: b.got, waited: b.waited, minRate: b.minRate}
		b.err = b.slow
		return 0, b.slow
	}
	b.waited, b.got = 0, 0
	return n, err
}

// tooSlowError ends a stream whose body arrives slower than the minimum.
type tooSlowError struct {
	got     int64
	waited  time.Duration
	minRate int64
}

func (e *tooSlowError) Error() string {
	return fmt.Sprintf("the request body arrived too slowly: %d bytes in %v of waiting, below the node's minimum of %d bytes/s",
		e.got, e.waited.Round(time.Millisecond), e.minRate)
}
