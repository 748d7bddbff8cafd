package resp

import (
	"bytes"
	"context"
	"time"

	"github.com/tidwall/redcon"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// plainSet reports whether rc is a SET without options on a signed-in
// connection outside a refused MULTI: the command whose pipelined runs
// setRun writes together.
func plainSet(ss *session, rc redcon.Command) bool {
	return len(rc.Args) == 3 && ss.tenant != "" && !ss.quit && !ss.multi && bytes.EqualFold(rc.Args[0], []byte("set"))
}

// pipelinedSet is one SET of a run, and what became of it.
type pipelinedSet struct {
	key       string
	body      []byte
	requestID string
	start     time.Time
	took      time.Duration
	begun     bool   // counted in flight (Server.begin): end it
	reply     string // the error reply; "" for OK
	res       result
}

// setRun runs consecutive plain SETs of a pipeline as concurrent durable
// writes, up to writeParallel at once (writeAll), so that they share the
// store's group commits as the SETs of as many clients do: a client that
// pipelines its writes gets the throughput of many connections from one.
// The SETs of one key are written one after the other, in the pipeline's
// order. Each SET is checked, traced, counted and logged as handleOne
// would; the run is admitted by the limiter as one request on as many
// documents as it has SETs, as an MSET of them is (one of the tenant's
// in-flight places, each SET's share of its rate), so that a pipelining
// connection holds no more places than one that is not. The replies are
// written in the pipeline's order once every write has returned, so none
// is sent before its write is durable, and a command after the run sees
// every write of it.
func (s *Server) setRun(c redcon.Conn, ss *session, cmds []redcon.Command, more bool) {
	met := s.met.cmds[commands["set"].idx]
	sets := make([]pipelinedSet, len(cmds))
	var keys []string // in the order of their first SET
	byKey := make(map[string][]int, len(cmds))
	writes := 0 // the SETs checked, to be written
	for i, rc := range cmds {
		st := &sets[i]
		st.start = time.Now()
		if ss.lc != nil {
			ss.lc.now = st.start
		}
		ss.seq++
		st.requestID = ss.requestID()
		if !s.begin() {
			st.reply, st.res = "TRYAGAIN the node is shutting down", failed(fault.Exhausted)
			continue
		}
		st.begun = true
		st.key = string(rc.Args[1])
		if err := doc.ValidateKey(st.key); err != nil {
			st.reply, st.res = "ERR "+fault.MessageOf(err), failed(fault.Invalid)
			continue
		}
		if msg := s.valueProblem(rc.Args[2], nil); msg != "" {
			st.reply, st.res = msg, failed(fault.Invalid)
			continue
		}
		st.body = bytes.Clone(rc.Args[2]) // the store keeps it; the read buffer is reused (loop.go)
		if _, seen := byKey[st.key]; !seen {
			keys = append(keys, st.key)
		}
		byKey[st.key] = append(byKey[st.key], i)
		writes++
	}
	admitted := true
	if s.opt.Limiter != nil && writes > 0 {
		if d := s.opt.Limiter.AcquireN(ss.tenant, writes); d.Admit {
			defer s.opt.Limiter.Release(ss.tenant)
		} else {
			admitted = false
			for _, is := range byKey {
				for _, i := range is {
					sets[i].reply, sets[i].res = "TRYAGAIN "+d.Reason+"; retry after "+retryAfter(d.RetryAfter), failed(fault.Exhausted)
				}
			}
		}
	}
	if admitted {
		writeAll(len(keys), func(k int) error {
			for _, i := range byKey[keys[k]] {
				s.pipelinedPut(ss, met, &sets[i])
			}
			return nil
		})
	}
	for i := range sets {
		st := &sets[i]
		if st.reply == "" {
			c.WriteString("OK")
		} else {
			c.WriteError(st.reply)
		}
		if st.took == 0 {
			st.took = time.Since(st.start)
		}
		met.duration.Observe(st.took.Seconds())
		if !st.begun {
			met.outcome(fault.Exhausted).Inc() // refused at shutdown, as handleOne counts it
			continue
		}
		s.end()
		s.countTenant(ss, st.res)
		if st.res.err {
			met.outcome(st.res.class).Inc()
		} else {
			met.ok.Inc()
		}
	}
	if !more {
		ss.unflushed = 0 // redcon sends the replies now
	}
}

// pipelinedPut writes one checked and admitted SET of a run, as cmdSet
// would, and notes its outcome in st.
func (s *Server) pipelinedPut(ss *session, met *cmdMetrics, st *pipelinedSet) {
	defer func() { st.took = time.Since(st.start) }()
	ctx := context.Background()
	var span trace.Span
	if s.opt.Tracer != nil {
		ctx, span = s.opt.Tracer.Start(ctx, met.spanName, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(telemetry.AttrTenant.String(ss.tenant), telemetry.AttrOp.String("SET"),
				telemetry.AttrRequestID.String(st.requestID)))
		defer span.End()
	}
	_, _, err := s.opt.Docs.Put(s.writeCtx(ctx), ss.tenant, st.key, st.body, doc.Precondition{})
	if err == nil {
		st.res = ok
		return
	}
	st.reply, st.res = s.failure(ss.tenant, st.requestID, "SET", err)
	if span != nil {
		span.SetAttributes(attrOutcome.String(st.res.class.String()))
		if serverSide(st.res.class) {
			span.SetStatus(codes.Error, st.res.class.String())
		}
	}
}
