package resp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/redcon"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/ingest"
	"github.com/cairnstore/cairn/internal/logevery"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
)

// Limiter admits or sheds one command of a tenant (resilience.Limiter),
// which takes one of the tenant's rate per document it acts on, and
// bounds the failed AUTH attempts node-wide, as it does HTTP requests.
type Limiter interface {
	AcquireN(tenant string, documents int) resilience.Decision
	MaxN() int // the most documents AcquireN admits at once
	Release(tenant string)
	AuthFailed() (ok bool, retryAfter time.Duration)
}

// Options configure a [Server]. Docs and Auth are required.
type Options struct {
	Docs server.Docs
	Auth *server.Verifier
	// Limiter sheds each tenant's commands past its limits; nil admits all.
	Limiter Limiter
	// Replies bounds the memory the documents an MGET gathers for its reply
	// hold, each counted twice (read, and written into the reply): one that
	// would go over it is answered -TRYAGAIN. nil: no bound. The node shares
	// it with the HTTP server's bodies (server.Options.Bodies).
	Replies *resilience.ByteBudget
	// Validate checks a value before it is stored; nil means strict JSON
	// nested at most MaxDepth deep, the HTTP server's default.
	Validate func([]byte) error
	// MaxBodyBytes bounds a value [1 MiB]; a whole command may be 64 KiB
	// more (keys, the command's framing), past which the connection is
	// answered an error and closed.
	MaxBodyBytes int64
	MaxDepth     int // [64]
	// MaxClients bounds the connections open at once [10000, Redis's
	// maxclients]: one past it is answered "-ERR max number of clients
	// reached" and closed, as Redis answers it.
	MaxClients int
	// Idle closes a signed-in connection that sends no complete command
	// for this long [DefaultIdle]: an idle client, or a slow one dribbling
	// a command. Negative: never, as Redis's "timeout 0" (MaxClients still
	// bounds the connections; WriteTimeout a client that stops reading).
	Idle time.Duration
	// AuthTimeout closes a connection that has not signed in (AUTH or
	// HELLO … AUTH) this long after it was accepted, or after it signed
	// out [10s], TLS handshake included: a client without a token holds
	// one of MaxClients places for that long at most, not for Idle.
	AuthTimeout time.Duration
	// WriteTimeout bounds each write of replies to a client [30s], so a
	// client that stops reading cannot hold a goroutine forever.
	WriteTimeout time.Duration
	// RequestTimeout is the deadline of each write command [5s].
	RequestTimeout time.Duration
	Logger         *slog.Logger
	// Registerer gets the front's metrics; nil registers none.
	Registerer prometheus.Registerer
	// TenantCommand, when set, is told of every command run while the
	// connection is signed in, for the per-tenant figures: whether its
	// reply was an error, and whether that error was the node's failure.
	TenantCommand func(tenant string, failed, serverSide bool)
	// Tracer, when not nil, gets one span per command.
	Tracer trace.Tracer
	// Version is reported by HELLO and INFO.
	Version string
}

// commandSlack is what a command may carry beyond its largest value.
const commandSlack = 64 << 10

// DefaultMaxClients is Options.MaxClients' default, Redis's maxclients.
const DefaultMaxClients = 10000

// DefaultAuthTimeout is Options.AuthTimeout's default: a client library
// signs in as it connects, well within it.
const DefaultAuthTimeout = 10 * time.Second

// DefaultIdle is Options.Idle's default: a pooled connection a client
// keeps for later is closed after it, and the client reconnects.
const DefaultIdle = 5 * time.Minute

// Server serves RESP connections. Its methods are safe for concurrent use.
type Server struct {
	opt      Options
	validate func([]byte) error
	log      *slog.Logger
	met      *metrics
	cursors  *cursors
	maxReply int // an MGET's most bytes of documents
	started  time.Time
	nextID   atomic.Uint64    // connection ids, from 1
	refused  atomic.Int64     // connections refused past MaxClients (RefusedClients)
	authLog  logevery.Limiter // thins the lines of AUTHs refused past the failed-auth budget

	// Draining: a command counts itself in inflight, then checks
	// draining; Shutdown sets draining, then checks inflight. Whichever
	// comes second sees the other, so no command starts unseen after
	// Shutdown checked, and the last one out closes idle.
	draining atomic.Bool
	inflight atomic.Int64
	idle     chan struct{} // closed once draining and no command is in flight
	idleOnce sync.Once

	conns  sync.WaitGroup // connection goroutines, Add in accept
	served chan struct{}  // closed when Serve returns

	mu   sync.Mutex          // guards ln and open
	ln   net.Listener        // set by Serve
	open map[*rconn]struct{} // connections open; nil before Serve and once it returns
}

// New returns a Server, or a Config-class error naming what is missing.
func New(opt Options) (*Server, error) {
	if opt.Docs == nil || opt.Auth == nil {
		return nil, fault.New(fault.Config, fault.Context{Op: "resp.new"}, "resp: Options.Docs and Options.Auth are required")
	}
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 1 << 20
	}
	if opt.MaxDepth <= 0 {
		opt.MaxDepth = 64
	}
	if opt.Idle == 0 {
		opt.Idle = DefaultIdle
	}
	if opt.AuthTimeout <= 0 {
		opt.AuthTimeout = DefaultAuthTimeout
	}
	if opt.MaxClients <= 0 {
		opt.MaxClients = DefaultMaxClients
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = 30 * time.Second
	}
	if opt.RequestTimeout <= 0 {
		opt.RequestTimeout = 5 * time.Second
	}
	s := &Server{opt: opt, validate: opt.Validate, log: opt.Logger, cursors: newCursors(maxCursors, cursorBytes),
		maxReply: int(max(16<<20, 4*opt.MaxBodyBytes)),
		started:  time.Now(), served: make(chan struct{}), idle: make(chan struct{})}
	if s.validate == nil {
		depth := opt.MaxDepth
		s.validate = func(b []byte) error { return ingest.ValidateDepth(b, depth) }
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.authLog.Period = 10 * time.Second // as the HTTP API's shed lines
	var err error
	if s.met, err = newMetrics(opt.Registerer); err != nil {
		return nil, err
	}
	return s, nil
}

// RefusedClients returns how many connections came past MaxClients and
// were refused since the server was made (cairn_shed_total).
func (s *Server) RefusedClients() int64 { return s.refused.Load() }

// Serve accepts connections on ln until Shutdown; it returns nil then, or
// the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	defer close(s.served)
	s.mu.Lock()
	s.ln = &limitListener{Listener: ln, max: s.opt.MaxBodyBytes + commandSlack, writeTimeout: s.opt.WriteTimeout,
		idle: s.opt.Idle, authTimeout: s.opt.AuthTimeout, maxClients: int64(s.opt.MaxClients), refused: &s.refused, log: s.log}
	ln = s.ln
	s.mu.Unlock()
	if s.draining.Load() {
		ln.Close()
		return nil
	}
	s.mu.Lock()
	s.open = map[*rconn]struct{}{}
	s.mu.Unlock()
	return s.acceptLoop(ln)
}

// Shutdown refuses new commands (-TRYAGAIN), waits until the commands in
// flight are answered or ctx ends, then closes the listener and every
// connection and waits for their goroutines, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	if s.inflight.Load() == 0 {
		s.idleOnce.Do(func() { close(s.idle) })
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	var err error
	select {
	case <-s.idle:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if ln == nil { // Serve never ran
		return err
	}
	ln.Close()
	<-s.served // Serve closes every connection as it returns
	// Every command has returned once these goroutines have: they run on
	// them. One may still be writing to a client that does not read (for
	// up to WriteTimeout): the wait is bounded by ctx too, and the
	// goroutine waiting ends when they do.
	conns := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(conns)
	}()
	select {
	case <-conns:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// session is one connection's state, used only by its goroutine.
type session struct {
	id     uint64
	addr   string
	lc     *limitConn
	since  time.Time // accepted
	proto  int       // 2 or 3 (HELLO 3)
	tenant string    // "" until AUTH
	name   string    // CLIENT SETNAME
	seq    uint64    // commands served, for request ids
	quit   bool      // QUIT was served: redcon still hands over the rest of its pipeline
	// multi: MULTI was refused and no EXEC, DISCARD or RESET has ended
	// it; the commands sent meanwhile are refused, not run (handle).
	multi bool
	// unflushed counts the reply bytes written into redcon's buffer since
	// it was last flushed (see bulk).
	unflushed int
	// cmdCtx is the context of the command being run, with its span when
	// tracing (dispatch); nil between commands.
	cmdCtx context.Context
}

// clientInfo is CLIENT INFO's line, with every field Redis 7 gives that
// clients parse: redis-py 4 reads qbuf, obl, tot-mem and the other
// integers without checking they are there, and fails on a line without
// them. What cairn does not keep (buffers, memory, events) reads 0.
func (ss *session) clientInfo() string {
	laddr := ""
	if ss.lc != nil {
		laddr = ss.lc.LocalAddr().String()
	}
	age := int64(time.Since(ss.since) / time.Second)
	return "id=" + strconv.FormatUint(ss.id, 10) + " addr=" + ss.addr + " laddr=" + laddr +
		" fd=0 name=" + ss.name + " age=" + strconv.FormatInt(age, 10) + " idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1" +
		" qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|info" +
		" user=" + ss.tenant + " redir=-1 resp=" + strconv.Itoa(ss.proto) + "\n"
}

// ctx is the context of the command being run: the store's and cache's
// spans are its children.
func (ss *session) ctx() context.Context {
	if ss.cmdCtx != nil {
		return ss.cmdCtx
	}
	return context.Background()
}

// flushAt bounds the replies a connection holds unsent: redcon writes a
// pipeline's replies once the whole pipeline has run, so a client sending
// many GETs of large documents, and reading nothing, would make the node
// hold every reply. The replies are sent between commands (handleOne),
// once the command has given back its place in flight and its tenant's
// slot: a client that does not read then holds neither a drain nor its
// tenant's other clients, only its own connection, for up to the write
// timeout. Only a command whose own replies pass flushHard (an MGET of
// large documents) sends them while it runs, so that a connection holds
// at most about flushHard and one document unsent.
const (
	flushAt   = 256 << 10
	flushHard = 1 << 20
)

// bulk writes b as a bulk reply; see flushAt.
func (ss *session) bulk(c redcon.Conn, b []byte) {
	c.WriteBulk(b)
	ss.wrote(c, len(b))
}

// wrote notes n bytes of reply written into c's buffer, and sends them if
// they pass flushHard; see flushAt.
func (ss *session) wrote(c redcon.Conn, n int) {
	ss.unflushed += n
	if ss.unflushed >= flushHard {
		ss.flush(c)
	}
}

// flush sends the replies buffered in c. A send that fails (the client did
// not read within the write timeout) ends the connection's pipeline.
func (ss *session) flush(c redcon.Conn) {
	ss.unflushed = 0
	if flush(c) != nil {
		ss.quit = true
	}
}

func (s *Server) accept(c redcon.Conn) bool {
	lc, _ := c.NetConn().(*limitConn)
	ss := &session{id: s.nextID.Add(1), addr: c.RemoteAddr(), lc: lc, proto: 2, since: time.Now()}
	c.SetContext(ss)
	s.conns.Add(1)
	s.met.conns.Inc()
	return true
}

func (s *Server) closed(c redcon.Conn, err error) {
	s.met.conns.Dec()
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, errTooLarge) {
		s.log.Debug("resp connection closed", "remote", c.RemoteAddr(), "err", err)
	}
	s.conns.Done()
}

// begin counts a command in flight, or reports that the server drains.
// A command begun must call end.
func (s *Server) begin() bool {
	s.inflight.Add(1)
	if s.draining.Load() {
		s.end()
		return false
	}
	return true
}

func (s *Server) end() {
	if s.inflight.Add(-1) == 0 && s.draining.Load() {
		s.idleOnce.Do(func() { close(s.idle) })
	}
}

// requestID names a command in logs and spans: the connection and the
// command's number on it.
func (ss *session) requestID() string {
	return "resp-" + strconv.FormatUint(ss.id, 10) + "-" + strconv.FormatUint(ss.seq, 10)
}
