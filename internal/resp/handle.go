package resp

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/tidwall/redcon"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// command is one entry of the command table.
type command struct {
	name string // upper case, as in metrics and spans
	// arity is the number of arguments with the name, as Redis counts it:
	// n exactly, or -n for at least n.
	arity int
	// public commands run before AUTH: the connection handshake.
	public bool
	// data commands act on the tenant's documents: they pass the limiter
	// and get a span.
	data bool
	// tx commands are served after a refused MULTI (cmdMulti): MULTI and
	// those that end it. Every other command is refused until one ends it.
	tx  bool
	run func(s *Server, c redcon.Conn, ss *session, args [][]byte) result
	idx int // its place in the table, which indexes a Server's metrics
	// flags and keys are what COMMAND reports of it, in Redis's terms, for
	// clients that route or check commands by them.
	flags []string
	keys  keySpec
}

// keySpec is where a command's keys are among its arguments, as COMMAND
// reports them: the first, the last (-1 for the last argument) and the
// step between two; all zero for a command without keys.
type keySpec struct{ first, last, step int }

// count is the number of keys among a command's nargs arguments (the
// name included), at least 1: what the command costs of its tenant's
// rate, one per document it acts on.
func (k keySpec) count(nargs int) int {
	last := k.last
	if last < 0 {
		last += nargs
	}
	if k.step <= 0 || last < k.first {
		return 1
	}
	return (last-k.first)/k.step + 1
}

// Command flags, as Redis names them.
var (
	flagsConn     = []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}
	flagsFast     = []string{"loading", "stale", "fast"}
	flagsAdmin    = []string{"loading", "stale"}
	flagsRead     = []string{"readonly", "fast"}
	flagsReadSlow = []string{"readonly"}
	flagsWrite    = []string{"write", "denyoom"}
	flagsDel      = []string{"write"}
)

var (
	oneKey   = keySpec{1, 1, 1}
	allKeys  = keySpec{1, -1, 1}
	keyPairs = keySpec{1, -1, 2}
)

// result is what a command did, for metrics and logs: the fault class of
// its error reply, if it sent one.
type result struct {
	class fault.Class
	err   bool
}

var ok = result{}

func failed(c fault.Class) result { return result{class: c, err: true} }

// commands is the table, keyed by lower-case name (the dispatcher lowers
// the client's name in place). Filled in init: the entries refer to
// functions that refer to the table (COMMAND).
var commands map[string]*command

// commandList is the table in order, as COMMAND lists it.
var commandList []*command

func init() {
	list := []*command{
		{name: "PING", arity: -1, flags: flagsFast, run: cmdPing},
		{name: "ECHO", arity: 2, flags: flagsFast, run: cmdEcho},
		{name: "AUTH", arity: -2, public: true, flags: flagsConn, run: cmdAuth},
		{name: "HELLO", arity: -1, public: true, flags: flagsConn, run: cmdHello},
		{name: "CLIENT", arity: -2, public: true, flags: flagsConn, run: cmdClient},
		{name: "QUIT", arity: -1, public: true, tx: true, flags: flagsConn, run: cmdQuit},
		{name: "RESET", arity: 1, public: true, tx: true, flags: flagsConn, run: cmdReset},
		{name: "MULTI", arity: 1, tx: true, flags: flagsFast, run: cmdMulti},
		{name: "EXEC", arity: 1, tx: true, flags: flagsFast, run: cmdExec},
		{name: "DISCARD", arity: 1, tx: true, flags: flagsFast, run: cmdDiscard},
		{name: "SELECT", arity: 2, flags: flagsFast, run: cmdSelect},
		{name: "INFO", arity: -1, flags: flagsAdmin, run: cmdInfo},
		{name: "COMMAND", arity: -1, flags: flagsAdmin, run: cmdCommand},
		{name: "GET", arity: 2, data: true, flags: flagsRead, keys: oneKey, run: cmdGet},
		{name: "GETETAG", arity: 2, data: true, flags: flagsRead, keys: oneKey, run: cmdGetETag},
		{name: "SET", arity: -3, data: true, flags: flagsWrite, keys: oneKey, run: cmdSet},
		{name: "DEL", arity: -2, data: true, flags: flagsDel, keys: allKeys, run: cmdDel},
		{name: "UNLINK", arity: -2, data: true, flags: flagsDel, keys: allKeys, run: cmdDel},
		{name: "EXISTS", arity: -2, data: true, flags: flagsRead, keys: allKeys, run: cmdExists},
		{name: "MGET", arity: -2, data: true, flags: flagsRead, keys: allKeys, run: cmdMGet},
		{name: "MSET", arity: -3, data: true, flags: flagsWrite, keys: keyPairs, run: cmdMSet},
		{name: "SCAN", arity: -2, data: true, flags: flagsReadSlow, run: cmdScan},
		{name: "TYPE", arity: 2, data: true, flags: flagsRead, keys: oneKey, run: cmdType},
		{name: "JSON.GET", arity: -2, data: true, flags: flagsReadSlow, keys: oneKey, run: cmdJSONGet},
		{name: "JSON.SET", arity: -4, data: true, flags: flagsWrite, keys: oneKey, run: cmdJSONSet},
	}
	commandList = list
	commands = make(map[string]*command, len(list))
	for i, cmd := range list {
		cmd.idx = i
		commands[lower(cmd.name)] = cmd
	}
}

func lower(s string) string {
	b := []byte(s)
	lowerInPlace(b)
	return string(b)
}

func lowerInPlace(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// handle runs one command; redcon calls it on the connection's goroutine
// for each command of a pipeline in turn and flushes the replies once the
// pipeline is done. A pipeline whose next two commands are plain SETs is
// taken from redcon and run here (pipeline), so that its writes can share
// group commits.
func (s *Server) handle(c redcon.Conn, rc redcon.Command) {
	ss := c.Context().(*session)
	next := c.PeekPipeline()
	if len(next) > 0 && plainSet(ss, rc) && plainSet(ss, next[0]) {
		s.pipeline(c, ss, append([]redcon.Command{rc}, c.ReadPipeline()...))
		return
	}
	s.handleOne(c, ss, rc, len(next) > 0)
}

// pipeline runs a pipeline's commands in order: each run of two or more
// plain SETs as one setRun, the others one by one.
func (s *Server) pipeline(c redcon.Conn, ss *session, cmds []redcon.Command) {
	limit := len(cmds)
	if s.opt.Limiter != nil {
		// A run is admitted as one request on as many documents as it has
		// SETs, which may not be more than the tenant's burst: longer runs
		// are cut, each part admitted on its own, as its SETs would be.
		limit = s.opt.Limiter.MaxN()
	}
	for len(cmds) > 0 {
		n := 0
		for n < len(cmds) && n < limit && plainSet(ss, cmds[n]) {
			n++
		}
		if n >= 2 {
			s.setRun(c, ss, cmds[:n], n < len(cmds))
			cmds = cmds[n:]
			continue
		}
		s.handleOne(c, ss, cmds[0], len(cmds) > 1)
		cmds = cmds[1:]
	}
}

// handleOne runs one command; more says whether the pipeline holds more
// after it.
func (s *Server) handleOne(c redcon.Conn, ss *session, rc redcon.Command, more bool) {
	if ss.quit {
		return // after QUIT, as in Redis, nothing more runs: its client was told the connection ends
	}
	start := time.Now()
	if ss.lc != nil {
		ss.lc.now = start // every complete command, known or not, counts against the idle limit
	}
	ss.seq++
	lowerInPlace(rc.Args[0])
	cmd := commands[string(rc.Args[0])]
	if ss.multi && (cmd == nil || !cmd.tx) {
		c.WriteError(errInRefusedTx)
		s.countTenant(ss, failed(fault.Invalid))
		if cmd == nil {
			s.met.unknown.Inc()
		} else {
			s.met.cmds[cmd.idx].outcome(fault.Invalid).Inc()
		}
		return
	}
	if cmd == nil {
		s.met.unknown.Inc()
		s.countTenant(ss, failed(fault.Invalid))
		c.WriteError("ERR unknown command '" + truncate(rc.Args[0]) + "', with args beginning with: " + argsPreview(rc.Args[1:]))
		return
	}
	met := s.met.cmds[cmd.idx]
	if !s.begin() {
		c.WriteError("TRYAGAIN the node is shutting down")
		met.outcome(fault.Exhausted).Inc()
		return
	}
	res := func() result {
		defer s.end()
		return s.dispatch(c, ss, cmd, met, rc.Args)
	}()
	if ss.lc != nil {
		ss.lc.f.authed = ss.tenant != ""
	}
	// The command's figures first: a send that waits on the client is not
	// the command's time.
	met.duration.Observe(time.Since(start).Seconds())
	s.countTenant(ss, res)
	if res.err {
		met.outcome(res.class).Inc()
	} else {
		met.ok.Inc()
	}
	switch {
	case !more:
		ss.unflushed = 0 // redcon sends the replies now
	case ss.unflushed >= flushAt:
		ss.flush(c) // out of flight and with the tenant's slot given back: see flushAt
	}
}

// countTenant tells Options.TenantCommand of a command run while the
// connection is signed in.
func (s *Server) countTenant(ss *session, res result) {
	if s.opt.TenantCommand != nil && ss.tenant != "" {
		s.opt.TenantCommand(ss.tenant, res.err, res.err && serverSide(res.class))
	}
}

// dispatch checks the arity, the session's authentication and the tenant's
// limits, then runs cmd, in a span when tracing.
func (s *Server) dispatch(c redcon.Conn, ss *session, cmd *command, met *cmdMetrics, args [][]byte) result {
	if n := len(args); (cmd.arity > 0 && n != cmd.arity) || (cmd.arity < 0 && n < -cmd.arity) {
		c.WriteError(errWrongArg + lower(cmd.name) + "' command")
		return failed(fault.Invalid)
	}
	if !cmd.public && ss.tenant == "" {
		c.WriteError(errNoAuth)
		return failed(fault.Unauthorized)
	}
	if !cmd.data {
		return cmd.run(s, c, ss, args)
	}
	if s.opt.Limiter != nil {
		n := cmd.keys.count(len(args))
		if maxN := s.opt.Limiter.MaxN(); n > maxN {
			// Never admissible, so not TRYAGAIN: a client would retry it
			// for good.
			c.WriteError(fmt.Sprintf("ERR %s acts on %d keys, more than one command may: %d, the tenant burst of --tenant-rate; send them in smaller commands",
				lower(cmd.name), n, maxN))
			return failed(fault.Invalid)
		}
		d := s.opt.Limiter.AcquireN(ss.tenant, n)
		if !d.Admit {
			c.WriteError("TRYAGAIN " + d.Reason + "; retry after " + retryAfter(d.RetryAfter))
			return failed(fault.Exhausted)
		}
		defer s.opt.Limiter.Release(ss.tenant)
	}
	if s.opt.Tracer == nil {
		return cmd.run(s, c, ss, args)
	}
	ctx, span := s.opt.Tracer.Start(context.Background(), met.spanName, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(telemetry.AttrTenant.String(ss.tenant), telemetry.AttrOp.String(cmd.name),
			telemetry.AttrRequestID.String(ss.requestID())))
	ss.cmdCtx = ctx
	res := cmd.run(s, c, ss, args)
	ss.cmdCtx = nil
	if res.err {
		span.SetAttributes(attrOutcome.String(res.class.String()))
		if serverSide(res.class) {
			span.SetStatus(codes.Error, res.class.String())
		}
	}
	span.End()
	return res
}

// serverSide reports whether an error reply of class c is the node's
// failure rather than the client's.
func serverSide(c fault.Class) bool {
	switch c {
	case fault.Unknown, fault.Transient, fault.Corruption, fault.Config:
		return true
	}
	return false
}

// fail answers err as an error reply and logs it when it is the node's
// failure.
func (s *Server) fail(c redcon.Conn, ss *session, cmd string, err error) result {
	return s.failSaying(c, ss, cmd, err, "")
}

// failSaying is fail with more said after the error's message.
func (s *Server) failSaying(c redcon.Conn, ss *session, cmd string, err error, more string) result {
	msg, res := s.failure(ss.tenant, ss.requestID(), cmd, err)
	c.WriteError(msg + more)
	return res
}

// failure is the error reply answering err, and its result; it logs err
// when it is the node's failure.
func (s *Server) failure(tenant, requestID, cmd string, err error) (string, result) {
	msg, class := errorReply(err)
	if serverSide(class) {
		s.log.Error("resp command failed", "request_id", requestID, "tenant", tenant, "op", cmd,
			"class", class.String(), "err", err)
	}
	return msg, failed(class)
}

// truncate quotes at most 128 bytes of a client's argument in an error,
// cut before a UTF-8 sequence the cut would split.
func truncate(b []byte) string {
	if len(b) <= 128 {
		return string(b)
	}
	n := 128
	for back := 0; back < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(b[n]); back++ {
		n--
	}
	if !utf8.RuneStart(b[n]) {
		n = 128 // not UTF-8 text: cut where the limit falls
	}
	return string(b[:n]) + "…"
}

func argsPreview(args [][]byte) string {
	out := ""
	for i, a := range args {
		if i == 3 {
			break
		}
		out += "'" + truncate(a) + "' "
	}
	return out
}

// retryAfter writes a TRYAGAIN's wait in whole milliseconds, rounded up,
// as a client's log shows it to a person.
func retryAfter(d time.Duration) string {
	return max(time.Millisecond, (d + time.Millisecond - 1).Truncate(time.Millisecond)).String()
}
