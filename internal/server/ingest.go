package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/deadline"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/ingest"
	"github.com/cairnstore/cairn/internal/ingest/bulk"
	"github.com/cairnstore/cairn/internal/server/reqctx"
	"github.com/cairnstore/cairn/internal/store"
)

// IngestPath is the bulk-ingestion route.
const IngestPath = "/v1/tenants/{tenant}/ingest"

// BatchWriter is the store as an ingest stream writes to it: each batch is
// one group commit, queued while the previous one is made durable
// (store.StartPutBatch). *store.Store implements it.
type BatchWriter interface {
	StartPutBatch(ctx context.Context, tenant string, items []store.Item) (*store.PendingBatch, error)
}

// IngestOptions mount the ingest route ([Options.Ingest]).
type IngestOptions struct {
	Writer BatchWriter
	Limits IngestLimits
	// Counted, if set, is told of each finished stream, with what it
	// counted (the node's ingest metrics and tenant table).
	Counted func(tenant string, st ingest.Stats)
}

// ingestRoute mounts POST /v1/tenants/{tenant}/ingest.
//
// Request: Content-Type application/x-ndjson; the body is a stream of JSON
// values, one per line (see package ingest for the framing). Query:
//
//	key_field=NAME      the top-level member that names each document, or
//	key_pointer=/a/b    an RFC 6901 pointer to it (exactly one of the two);
//	                    a string (unescaped) or a number's literal text
//	schema=marketdata   decode and check each record as a market data tick
//	                    (ingest.MarketData) instead of as any JSON value; the
//	                    document is named by its symbol (key_field may be
//	                    omitted or must be "symbol"; key_pointer is refused),
//	                    so a later tick of a symbol replaces the earlier one
//
// The body is streamed through ingest.Process in bounded memory, never read
// whole; it may be any length, but each line must fit
// Options.MaxBodyBytes. Each batch of the stream is one store group commit (one
// fsync under sync durability; store.StartPutBatch), in stream order
// (ordered delivery), with at most two batches in the store at once: the
// store stages one while it fsyncs the other. The stream is not bound by the
// per-request deadline (see streamContext); the reply is sent only after the
// last batch is durable. IngestOptions.Limits bound the streams served at
// once, per node and per tenant, and the slowest rate at which a stream may send
// (ingest_limits.go).
//
// Partial success. A record is accepted (stored, durable when the reply
// arrives) or rejected (stored nowhere): malformed JSON, a MarketData field
// error, a line over the record limit, a missing key or a key
// doc.ValidateKey refuses. Rejects do not stop the stream; the reply counts
// them all and lists the first api.MaxIngestRejects with line, byte offset and
// reason. A complete stream is answered 200 whatever was rejected.
//
// A fatal error stops the stream: a store failure (5xx), the client going
// away or its body failing mid-stream, the request context ending. If the
// connection is still there the reply has the error's status, the usual
// "error" object, "complete": false, and says how far it got:
// processed_bytes (every record that starts before it was either committed
// or rejected) and last_durable_line (the line of the last committed
// record). Records after processed_bytes were not stored, except that after
// a failed commit the failing batch's outcome is unknown, as for any write
// whose commit failed (see package store); "accepted" counts only the
// committed records, and "records" every record read. The
// request is not idempotent in
// general (a replay rewrites every accepted document as a new version), but
// resuming from processed_bytes is safe.
//
// A body that stops arriving is answered 408 timeout, as for PUT, and one
// that arrives slower than the minimum rate 408 too_slow, both with the
// reply above.
func (s *Server) ingestRoute(o *IngestOptions) Route {
	return Route{Pattern: "POST " + IngestPath, Op: "ingest", Access: AccessTenant, Handler: s.newIngestHandler(o)}
}

func (s *Server) newIngestHandler(o *IngestOptions) *ingestHandler {
	limits := o.Limits.withDefaults()
	return &ingestHandler{
		s:       s,
		w:       o.Writer,
		limit:   s.maxBody,
		limits:  limits,
		slots:   newIngestSlots(limits),
		counted: o.Counted,
	}
}

// ingestHandler serves the ingest route.
type ingestHandler struct {
	s       *Server
	w       BatchWriter
	limit   int64            // largest record
	limits  IngestLimits     // defaults filled in
	slots   *ingestSlots     // the streams in progress
	now     func() time.Time // the clock of the rate limit; nil is time.Now
	counted func(tenant string, st ingest.Stats)
}

func (h *ingestHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw := r.Body
	body, wire, err := decodedBody(r, "ingest") // gzip or identity, else 415
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	r.Body = body
	opts, err := h.options(r)
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	release, err := h.slots.acquire(TenantOf(r))
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	defer release()

	ctx, cancel := streamContext(r.Context())
	defer cancel()
	now := h.now
	if now == nil {
		now = time.Now
	}
	run := &ingestRun{ctx: ctx, tenant: TenantOf(r), market: opts.Schema == ingest.MarketDataSchema, wire: wire,
		rc: http.NewResponseController(w), timeouts: h.s.timeouts,
		body: &pacedBody{r: r.Body, now: now, minRate: h.limits.MinRate, window: h.limits.RateWindow, stop: h.s.drained}}
	run.load = &bulk.Loader{Ctx: ctx, W: h.w, Tenant: run.tenant, Market: run.market, Batch: run.batchTrace}
	answering := h.watchDrain(run)
	defer answering() // a panic too stops the watch
	st, err := ingest.Process(ctx, run.body, opts, run.handle)
	if werr := run.load.Wait(); werr != nil && err == nil {
		err = werr // the last batch's commit failed
	}
	h.countIngest(run.tenant, st)
	shutdown := errors.Is(run.body.err, errShuttingDown) // the server's drain ended the stream
	reply := run.reply(st)
	status := http.StatusOK
	if err != nil {
		// Batches after the last durable one may have been handled, so
		// Process's byte count can run ahead of what is stored.
		reply.ProcessedBytes = run.load.DurableEnd
		err = run.classify(ctx, err)
		var code string
		status, code = statusOf(err)
		reply.Complete = false
		reply.Error = &api.Error{Code: code, Message: ClientMessage(err, status), RequestID: reqctx.RequestID(r.Context())}
	}
	if x := exchangeFrom(r.Context()); x != nil {
		// The request's one log line says why the stream stopped (its
		// class and level follow err) and how far it got.
		if err != nil {
			x.failure = err
		}
		x.extra = append(x.extra, slog.Int64("processed_bytes", reply.ProcessedBytes),
			slog.Int64("last_durable_line", reply.LastDurableLine))
	}
	b, _ := json.Marshal(reply) // plain structs: cannot fail
	answering()
	run.extend()
	if err != nil {
		h.s.errorHeaders(w.Header(), err, status)
		if shutdown {
			// The rest of the body is read and dropped after the answer,
			// below: closing with it unread would reset the connection,
			// and a client still sending would lose the answer, which
			// says where to resume.
			w.Header().Set("Connection", "close")
			w.Header().Set("Content-Length", strconv.Itoa(len(b)+1)) // the answer's end, for lingerClose
			_ = run.rc.EnableFullDuplex()
		} else if !run.body.eof {
			leaveBody(w) // after extend, whose read deadline it replaces
		}
	} else {
		w.Header()["Content-Type"] = jsonContentType
		w.Header()["Cache-Control"] = noStore
	}
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
	if shutdown {
		h.s.lingerClose(run.rc, raw)
	}
}

// lingerClose sends the answer written to rc, then reads and drops what
// the client still sends for up to shutdownLinger before closing, so that
// a client still sending takes the answer rather than a reset. It reads
// the connection itself, taken from net/http: the body's reader keeps the
// error of a read the drain's deadline ended and would return it at once.
// Where the connection cannot be taken (HTTP/2), it reads body.
func (s *Server) lingerClose(rc *http.ResponseController, body io.Reader) {
	_ = rc.Flush()
	s.lingering.Add(1)
	defer s.lingering.Done()
	conn, _, err := rc.Hijack()
	if err != nil {
		_ = rc.SetReadDeadline(time.Now().Add(shutdownLinger))
		_, _ = io.Copy(io.Discard, body)
		return
	}
	defer conn.Close()
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite() // the answer is whole: a client that reads it may stop sending
	}
	_ = conn.SetReadDeadline(time.Now().Add(shutdownLinger))
	_, _ = io.Copy(io.Discard, conn)
}

// watchDrain ends the stream's read that waits on the client when the
// server starts draining: pacedBody checks the drain before each read,
// but a client that stalls leaves the handler in a read until the read
// deadline, longer than a drain. The returned func, called before the
// answer, stops the watch, so it cannot cut the answer's linger short.
func (h *ingestHandler) watchDrain(run *ingestRun) (answering func()) {
	var mu sync.Mutex
	answered := false
	done := make(chan struct{})
	go func() {
		select {
		case <-h.s.drained:
			mu.Lock()
			if !answered {
				_ = run.rc.SetReadDeadline(time.Now())
			}
			mu.Unlock()
		case <-done:
		}
	}()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if !answered {
			answered = true
			close(done)
		}
	}
}

// shutdownLinger bounds how long an ingest stopped by the node's shutdown
// reads and drops the rest of its body after answering, for the client to
// take the answer before the connection closes.
const shutdownLinger = 2 * time.Second

// options checks the request and turns its query into ingest options.
// Errors are fault.Invalid (400).
func (h *ingestHandler) options(r *http.Request) (ingest.Options, error) {
	bad := func(msg string) (ingest.Options, error) {
		return ingest.Options{}, fault.New(fault.Invalid, fault.Context{Op: "ingest"}, msg)
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-ndjson" {
		return bad(fmt.Sprintf("Content-Type %q: want application/x-ndjson", ct))
	}
	q := r.URL.Query()
	if err := onlyParams(q, "key_field", "key_pointer", "schema"); err != nil {
		return bad(err.Error())
	}
	limit := h.limit
	o := ingest.Options{
		KeyField:      q.Get("key_field"),
		KeyPointer:    q.Get("key_pointer"),
		MaxRecordSize: int(limit),
		MaxDepth:      DefaultMaxDepth,
		MaxRejects:    api.MaxIngestRejects,
		// Ordered delivery makes the committed records a prefix of the
		// input, so processed_bytes means something after a failure.
		Ordered: true,
	}
	switch s := q.Get("schema"); s {
	case "", "generic":
		switch {
		case o.KeyField != "" && o.KeyPointer != "":
			return bad("give key_field or key_pointer, not both")
		case o.KeyField == "" && o.KeyPointer == "" && (q.Has("key_field") || q.Has("key_pointer")):
			return bad("key_field and key_pointer are empty: give the member (key_field) or JSON pointer (key_pointer) that names each document")
		case o.KeyField == "" && o.KeyPointer == "":
			return bad("key_field or key_pointer is required: it names each document")
		case o.KeyPointer != "":
			if err := checkPointer(o.KeyPointer); err != nil {
				return bad("key_pointer: " + err.Error())
			}
		}
	case "marketdata":
		if o.KeyPointer != "" || (o.KeyField != "" && o.KeyField != "symbol") {
			return bad("schema=marketdata names each document by its symbol: omit key_pointer, and key_field must be symbol if given")
		}
		o.Schema, o.KeyField = ingest.MarketDataSchema, ""
	case "export":
		if o.KeyField != "" || o.KeyPointer != "" {
			return bad(`schema=export names each document by its "key" member: omit key_field and key_pointer`)
		}
		o.KeyPointer, o.BodyPointer = ingest.ExportKeyPointer, ingest.ExportBodyPointer
	default:
		return bad(fmt.Sprintf("schema %q: want generic, marketdata or export", s))
	}
	return o, nil
}

// checkPointer checks RFC 6901 syntax: ingest.Process would refuse a bad
// pointer too, but only once the body is being read.
func checkPointer(p string) error {
	if !strings.HasPrefix(p, "/") {
		return errors.New("must start with '/'")
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return errors.New("'~' must be followed by 0 or 1")
		}
	}
	return nil
}

// ingestRun is the state of one ingest request. handle and wait run on
// Process's goroutine only (Process calls the Handler from one goroutine),
// and the handler's reply code runs after Process returned, so nothing here
// needs a lock.
type ingestRun struct {
	// ctx is the stream's context. A queued batch must not use the context
	// Process passes to the Handler: Process cancels it when it returns,
	// which would withdraw the last batch, still queued, as "not written".
	ctx      context.Context
	tenant   string
	market   bool
	rc       *http.ResponseController
	timeouts Timeouts
	body     *pacedBody  // the request body as Process reads it
	wire     *wireReader // a gzip body as it comes off the connection; nil for another

	// load commits the batches: how far they are durable (LastLine,
	// DurableEnd), how many (Batches) and the store failure that stopped
	// the stream (StoreErr).
	load *bulk.Loader
}

// handle queues one batch for its group commit (package bulk, shared with
// cairn import) and pushes the connection's deadlines forward.
func (run *ingestRun) handle(ctx context.Context, b *ingest.Batch) error {
	defer run.extend()
	return run.load.Handle(ctx, b)
}

// batchTrace gives each batch its ingest.batch span (ingest_telemetry.go).
func (run *ingestRun) batchTrace(b *ingest.Batch, accepted int) func([]store.Record, error) {
	span := run.batchSpan(b, accepted)
	return func(recs []store.Record, err error) { endBatchSpan(span, recs, err) }
}

// streamContext is the context of an ingest stream: the request's, without
// its deadline (a standard one or one carried as a value, package
// deadline). A stream lasts as long as it makes progress, far beyond the
// per-request deadline the server sets (Options.Deadline, meant for
// single-document requests); stalls are bounded instead by the connection
// deadlines that extend renews batch by batch. Cancellation still passes:
// the client going away, or the server cancelling its requests, stops the
// stream.
func streamContext(req context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(deadline.Without(context.WithoutCancel(req)))
	stop := context.AfterFunc(req, func() {
		if errors.Is(req.Err(), context.Canceled) {
			cancel(context.Cause(req))
		}
	})
	return ctx, func() { stop(); cancel(nil) }
}

// extend pushes the connection's read and write deadlines forward by the
// server's timeouts: the stream may last far longer than either, and each
// batch is progress. A connection that stalls for a whole timeout still
// times out.
func (run *ingestRun) extend() {
	now := time.Now()
	_ = run.rc.SetReadDeadline(now.Add(run.timeouts.Read)) // ErrNotSupported behind a wrapper without Unwrap: the server's deadlines stay
	_ = run.rc.SetWriteDeadline(now.Add(run.timeouts.Write))
}

// classify gives a fatal Process error its class. Outcomes, first match:
//   - a store failure keeps its own class, unless it is the stream's context
//     ending (a batch given up as "not written"): that is a consequence,
//     and its cause is classified below;
//   - a body sent slower than the minimum rate: 408 too_slow;
//   - a body that stopped arriving (the connection's read deadline): 408
//     timeout, as bodyReadError words it for every route, even
//     though the failed read also cancelled the request's context;
//   - a stopped context: the client going away (Canceled);
//   - a body that broke otherwise: 400.
//
// The messages say how far the stream got and never carry the read error's
// text, which names socket addresses; the log line has it.
func (run *ingestRun) classify(ctx context.Context, err error) error {
	where := fmt.Sprintf("after %d bytes (through line %d durable)", run.load.DurableEnd, run.load.LastLine)
	c := fault.Context{Op: "ingest", Tenant: run.tenant}
	stopped := func(class fault.Class, cause error, why string) error {
		return &fault.Error{Class: class, Context: c, Msg: "ingest stopped " + where + ": " + why, Err: cause}
	}
	storeErr := run.load.StoreErr
	givenUp := ctx.Err() != nil && errors.Is(storeErr, ctx.Err())
	switch {
	case storeErr != nil && !givenUp:
		return fault.E(fault.ClassOf(storeErr), c, fmt.Errorf("ingest stopped %s: store: %w", where, storeErr))
	case run.body.slow != nil:
		return withStatus(http.StatusRequestTimeout, "too_slow", stopped(fault.Transient, err, run.body.slow.Error()))
	case errors.Is(run.body.err, errShuttingDown):
		return withStatus(http.StatusServiceUnavailable, "shutting_down", stopped(fault.Transient, errShuttingDown,
			"the node is shutting down; send the lines after the last durable one again, to this node once it is back or to another"))
	case run.body.err != nil:
		cause, wireFailed := run.body.err, run.wire != nil && run.wire.err != nil
		if wireFailed {
			cause = run.wire.err // the body itself failed, under the gzip stream
		}
		berr := bodyReadError("ingest", 0, cause)
		if status, code := statusOf(berr); status == http.StatusRequestTimeout {
			// The cause itself, not berr: its message is a whole request's,
			// and says nothing was stored.
			return withStatus(status, code,
				stopped(fault.ClassOf(berr), cause, "the request body stopped arriving within the read timeout"))
		}
		if run.wire != nil && !wireFailed && gzipFailure(cause) {
			return stopped(fault.Invalid, cause, "Content-Encoding gzip: the body is not a whole gzip stream ("+gzipReason(cause)+")")
		}
		if errors.Is(cause, io.ErrUnexpectedEOF) {
			// A body cut short, by a client that may still read the
			// answer (it half-closed): its error, not the cancellation
			// net/http then makes of the connection's end.
			return stopped(fault.Invalid, cause, "the request body "+endedEarly)
		}
	}
	if ctx.Err() != nil {
		return fault.E(fault.Canceled, c, fmt.Errorf("ingest stopped %s: %w", where, ctx.Err()))
	}
	return stopped(fault.Invalid, err, "reading the request body failed")
}

func (run *ingestRun) reply(st ingest.Stats) api.IngestResult {
	rejected := st.Malformed + st.Oversize + st.Skipped
	secs := st.Duration.Seconds()
	rep := api.IngestResult{
		Complete: true,
		Stats: api.IngestStats{
			// Accepted is what was committed: the same as the records
			// decoded once every batch committed, fewer after a failed one.
			Records: st.Records + rejected, Bytes: st.Bytes, Accepted: run.load.Stored, Rejected: rejected,
			Malformed: st.Malformed, Oversize: st.Oversize, InvalidKey: st.Skipped,
			DurationMS:     float64(st.Duration.Microseconds()) / 1000,
			ThroughputMBps: st.Throughput() / 1e6,
			Batches:        run.load.Batches,
		},
		ProcessedBytes:  st.Bytes,
		LastDurableLine: run.load.LastLine,
		Rejects:         make([]api.IngestReject, 0, len(st.Rejects)),
		RejectsOmitted:  rejected - int64(len(st.Rejects)),
	}
	if secs > 0 {
		rep.Stats.RecordsPerSec = float64(st.Records) / secs
	}
	for _, rj := range st.Rejects {
		kind := rj.Kind.String()
		if rj.Kind == ingest.KindSkipped {
			kind = "invalid_key" // the only reason handle skips
		}
		rep.Rejects = append(rep.Rejects, api.IngestReject{Line: rj.Line, Offset: rj.Offset, Kind: kind, Reason: fault.MessageOf(rj.Err)})
	}
	return rep
}
