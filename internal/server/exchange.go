package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// exchange is the server's record of one request: its identity, what was
// answered, and how it failed. It is the request's ResponseWriter, and the
// request's context carries it under exchangeKey.
type exchange struct {
	w       http.ResponseWriter
	info    reqctx.Info
	start   time.Time
	status  int   // 0 until the header is written
	bytes   int64 // body bytes written
	failure error // why the request failed; nil if it did not
	quiet   bool  // a 4xx/5xx that is an answer, not a failure (/readyz)
	// extra: what the handler adds to the request's log line (an
	// ingest's progress), so a failed request still has one line.
	extra []slog.Attr
	// bodyRead: the handler read the request body to its end (readEncoded);
	// an error answer to a request with a body not read closes the
	// connection (writeError).
	bodyRead bool
	// routed is set when the server routed the request itself (docRouter),
	// with the path values ServeMux would have recorded: r.PathValue has
	// none then, so handlers read them through pathValue.
	routed      bool
	tenant, key string
	// hdr backs the header values of the hot path (X-Request-Id, ETag,
	// Content-Length): one allocation for the exchange instead of one per
	// header. Each value is handed out as a slice with cap 1, so an
	// Header.Add appends to a new array rather than into this one.
	hdr [3]string
	// stack is a panic's stack, logged whole: it is the server's text,
	// not the client's, so it is not bounded as request data is.
	stack []byte
}

// headerValues returns two one-element slices for header values, from the
// exchange behind w if there is one.
func headerValues(w http.ResponseWriter, a, b string) ([]string, []string) {
	if x, ok := w.(*exchange); ok {
		x.hdr[1], x.hdr[2] = a, b
		return x.hdr[1:2:2], x.hdr[2:3:3]
	}
	return []string{a}, []string{b}
}

type exchangeKey struct{}

// exchangeFrom returns the exchange of a request served by a Server, or nil.
func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// pathValue is r.PathValue(name) for a request routed by ServeMux or by
// the server's own router of the document routes.
func pathValue(r *http.Request, name string) string {
	if x := exchangeFrom(r.Context()); x != nil && x.routed {
		switch name {
		case "tenant":
			return x.tenant
		case "key":
			return x.key
		}
	}
	return r.PathValue(name)
}

// exchangeOf finds the exchange behind w, looking through wrappers that
// follow the Unwrap convention of http.ResponseController.
func exchangeOf(w http.ResponseWriter) *exchange {
	for w != nil {
		if x, ok := w.(*exchange); ok {
			return x
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

func (x *exchange) Header() http.Header { return x.w.Header() }

func (x *exchange) WriteHeader(code int) {
	if x.status == 0 && code >= 200 {
		x.status = code
	}
	x.w.WriteHeader(code)
}

func (x *exchange) Write(p []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	n, err := x.w.Write(p)
	x.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client; listing streams rely on it.
func (x *exchange) Flush() {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	if f, ok := x.w.(http.Flusher); ok {
		f.Flush()
	}
}

// FlushError is Flush that reports a failed write (the client is gone).
func (x *exchange) FlushError() error {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	if f, ok := x.w.(interface{ FlushError() error }); ok {
		return f.FlushError()
	}
	if f, ok := x.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (x *exchange) Unwrap() http.ResponseWriter { return x.w }

// finish logs the request and turns a panic in a handler into a 500 (or, if
// the answer has started, into an aborted connection). It must be deferred
// directly so that recover works.
func (s *Server) finish(x *exchange, r *http.Request) {
	p := recover()
	if p == nil {
		s.logExchange(x, r)
		return
	}
	if p == http.ErrAbortHandler {
		if x.failure == nil {
			x.failure = fault.New(fault.Unknown, fault.Context{}, "response aborted")
		}
		s.logExchange(x, r)
		panic(p)
	}
	x.failure = fault.New(fault.Unknown, fault.Context{Op: x.info.Op}, fmt.Sprintf("panic: %v", p))
	x.stack = debug.Stack()
	if x.status != 0 {
		s.logExchange(x, r)
		panic(http.ErrAbortHandler)
	}
	s.writeError(x, r, x.failure)
	s.logExchange(x, r)
}

// logExchange writes the request's one log line: at Debug for a success (the
// access log), at Info for a client error, at Error for a server error. A
// failed request is logged exactly once, here, with its class.
func (s *Server) logExchange(x *exchange, r *http.Request) {
	status := x.status
	if status == 0 {
		status = http.StatusOK // net/http's answer to a handler that wrote nothing
	}
	level, msg := slog.LevelDebug, "request"
	errStatus, code := status, ""
	if x.failure != nil {
		errStatus, code = statusOf(x.failure)
	} else if x.info.Shed {
		code = fault.Exhausted.String() // the admission middleware's own answer
	}
	if x.failure != nil || (status >= 400 && !x.quiet) {
		level, msg = slog.LevelInfo, "request failed"
		// A shed request (admission, or past --max-conns), one for a
		// tenant still catching up and an ingest the drain ended are the
		// node's deliberate answers under load, during a restore or a
		// planned stop, not its failures: Info, as 4xx. Other exhausted
		// 503s (a full disk, no descriptors left) are the node's trouble:
		// Error.
		if errStatus >= 500 && !x.info.Shed && code != "catching_up" && code != "shutting_down" {
			level = slog.LevelError
		}
	}
	suppressed := 0
	// An ingest's line is never thinned: it says through which line the
	// stream is durable, which a client that lost the answer looks up by
	// its request id.
	if (x.info.Shed && level == slog.LevelInfo) || (code == fault.Exhausted.String() && level == slog.LevelError && x.info.Op != "ingest") {
		// Shed answers come as fast as clients send them, so a flood would
		// be a line each: one a period per tenant and status is at Info,
		// saying how many were held back; the rest at Debug. cairn_shed_total
		// counts them all. So do the node's refusals for want of room (a
		// disk nearly full): a line each would fill it faster, and the
		// store's own warning says why.
		key := strconv.Itoa(status) + " " + level.String()
		if x.info.Authenticated {
			key += " " + x.info.Tenant // bounded: tenants that authenticated
		}
		var ok bool
		if ok, suppressed = s.shedLog.Allow(key, s.now()); !ok {
			level = slog.LevelDebug
		}
	}
	if s.errorsOnly && level == slog.LevelDebug {
		return
	}
	ctx := r.Context()
	if !s.log.Enabled(ctx, level) {
		return
	}
	// What comes from the request (the path, a key, an error quoting
	// them) is bounded, so a client cannot make one log line as large as
	// its request.
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("request_id", x.info.ID),
		// Who sent it: what an audit of refused tokens needs (behind a
		// proxy, the proxy; X-Forwarded-For is the client's to write).
		slog.String("remote", r.RemoteAddr),
		slog.String("method", r.Method),
		slog.String("path", bound(r.URL.Path, maxLogField)),
		slog.Int("status", status),
		slog.String("op", x.info.Op),
		slog.String("tenant", x.info.Tenant),
		slog.Duration("duration", s.now().Sub(x.start)),
		slog.Int64("bytes", x.bytes),
	)
	if x.failure == nil && x.info.Shed {
		attrs = append(attrs, slog.String("class", code))
	}
	if x.failure != nil {
		fc := fault.ContextOf(x.failure)
		attrs = append(attrs,
			slog.String("class", fault.ClassOf(x.failure).String()),
			slog.String("error", bound(x.failure.Error(), maxLogError)))
		if fc.Key != "" {
			attrs = append(attrs, slog.String("key", bound(fc.Key, maxLogField)))
		}
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	attrs = append(attrs, x.extra...)
	if x.stack != nil {
		attrs = append(attrs, slog.String("stack", string(x.stack)))
	}
	s.log.LogAttrs(ctx, level, msg, attrs...)
}

// Request ids.
const maxRequestIDLen = 64

// sanitizeRequestID accepts a client's X-Request-ID if it is 1–64 bytes of
// letters, digits and "._:-": enough for UUIDs, W3C trace ids and the ids
// of common proxies, and nothing that could make a log line or a header
// ambiguous (spaces, quotes, '=', control characters). Otherwise the server
// generates one.
func sanitizeRequestID(s string) (string, bool) {
	if s == "" || len(s) > maxRequestIDLen {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return "", false
		}
	}
	return s, true
}

// ValidRequestID reports whether a client's X-Request-ID is one the server
// keeps (see sanitizeRequestID), for handlers outside a Server that echo it.
func ValidRequestID(id string) bool {
	_, ok := sanitizeRequestID(id)
	return ok
}

// Bounds on what a log line or an error message copies from a request.
const (
	maxLogField = 256  // a path, a key, a header value
	maxLogError = 1024 // an error's text, which may quote a key or a path
)

// bound returns s cut to at most n bytes, on a UTF-8 boundary, with a
// marker giving its full length; s itself when it is short enough.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// idGen makes request ids: a random per-process prefix and a counter, so ids
// are unique across restarts and nodes (with overwhelming probability) and
// cost one small allocation.
type idGen struct {
	prefix string
	n      atomic.Uint64
}

func newIDGen() *idGen {
	const alphabet = "0123456789abcdefghijklmnopqrstuv"
	var b [10]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return &idGen{prefix: string(b[:]) + "-"}
}

func (g *idGen) next() string {
	var buf [32]byte
	b := append(buf[:0], g.prefix...)
	b = strconv.AppendUint(b, g.n.Add(1), 36)
	return string(b)
}

// Status is the response status written so far (0 before the header), for
// instrumentation middleware (telemetry.StatusRecorder).
func (x *exchange) Status() int { return x.status }

// BytesWritten is the number of body bytes written so far.
func (x *exchange) BytesWritten() int64 { return x.bytes }
