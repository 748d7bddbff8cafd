package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// Listener wraps ln so that the answers net/http writes by itself,
// before any handler runs, are the server's JSON error body with a request
// id (in the body and in X-Request-ID), like every other error, and are
// logged at Info. These are the requests net/http cannot parse: a request
// line or target it refuses (a path with a malformed percent-escape such as
// "%zz"), a missing or malformed Host, a bad header or Content-Length (400),
// headers over the size limit (431), an unknown transfer coding (501), an
// unsupported HTTP version (505). The lines go to the server's logger, with
// the server's request ids; [Server.Serve] serves through it.
//
// It recognises net/http's answer by its exact shape, written in one Write
// on the connection: a status line, then "Content-Type: text/plain;
// charset=utf-8" and "Connection: close" in that order, then the body. No
// answer of a handler has it: net/http writes a handler's headers sorted
// (Connection before Content-Type) and adds Date.
//
// Under TLS it wraps the connections tls.NewListener returns, so that it
// sees plaintext; a client speaking plain HTTP to that port then gets the
// same JSON 400 (telling it to use HTTPS), where net/http would answer in
// plain text. Sharp edge: net/http does not see a *tls.Conn, so r.TLS is
// nil and HTTP/2 is not negotiated (cairn serves HTTP/1.1 only). Wrapped
// below TLS it never matches and changes nothing.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &rawErrorListener{Listener: ln, log: s.log, ids: s.ids, limit: &s.conns, headerTimeout: s.timeouts.ReadHeader}
}

type rawErrorListener struct {
	net.Listener
	log           *slog.Logger
	ids           *idGen
	limit         *connLimit    // nil: no limit
	headerTimeout time.Duration // Timeouts.ReadHeader, named in its 408
}

// Accept also holds the server's connections to Options.MaxConns (conns.go).
func (l *rawErrorListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.limit == nil {
			return &rawErrorConn{Conn: c, l: l}, nil
		}
		over, ok := l.limit.admit()
		if ok {
			return &rawErrorConn{Conn: c, l: l, over: over}, nil
		}
		_ = c.Close()
	}
}

// rawErrorConn rewrites net/http's own error answers on one connection.
type rawErrorConn struct {
	net.Conn
	l *rawErrorListener
	// readErr: a read failed. The only such failure net/http answers is a
	// TLS handshake's (any other is a closed or timed-out connection): a
	// client that does not speak TLS to this port, already answered by
	// readFailed when it sent plain HTTP, or a handshake that failed (an old
	// version, an untrusted certificate), which gets no answer and no log
	// line, so that a scanner cannot fill the log.
	readErr atomic.Bool
	// over: the connection is past Options.MaxConns; its requests are
	// answered 503 (conns.go).
	over   bool
	closed atomic.Bool
	// stalled: the last read ended at its deadline. net/http answers a
	// request line or header cut off by the header timeout with a 400, as
	// if it were malformed; it is the client's slowness (408).
	stalled atomic.Bool
}

// Close releases the connection's place under the limit, once.
func (c *rawErrorConn) Close() error {
	if c.closed.CompareAndSwap(false, true) && c.l != nil && c.l.limit != nil {
		c.l.limit.release(c.over)
	}
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close the connection after an error answer
// (it then waits for the client to see it before closing), as it does on a
// bare *net.TCPConn.
func (c *rawErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Read answers a plain-HTTP request to a TLS port, which the handshake
// refuses with a tls.RecordHeaderError carrying the underlying connection.
func (c *rawErrorConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.readFailed(err)
	}
	return n, err
}

// SetReadDeadline forgets a read that ended at an earlier deadline once
// net/http sets a new one, as it does before reading each request (a zero
// one when it has no timeout): a request that was already buffered when
// net/http ended its background read (pipelined behind the one before) is
// parsed without another read, and its malformed line is its own, not a
// stall.
func (c *rawErrorConn) SetReadDeadline(t time.Time) error {
	if c.stalled.Load() && (t.IsZero() || t.After(time.Now())) {
		c.stalled.Store(false)
	}
	return c.Conn.SetReadDeadline(t)
}

// readFailed is Read's error path, apart so that the error it takes apart
// (errors.As makes it escape) is allocated only on a failed read, not on
// every read of every request.
func (c *rawErrorConn) readFailed(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// net/http ends its background read after every request by moving
		// the deadline, and a timeout ends an idle connection: neither is
		// followed by an answer of net/http's own, and a later request on
		// the connection, read afresh, must still get its JSON error. A
		// request cut off by the header timeout is, with a 400 (Write).
		c.stalled.Store(true)
		return
	}
	if errors.Is(err, io.EOF) {
		return // a client closed the connection
	}
	c.readErr.Store(true)
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader[:]) {
		c.answer(rh.Conn, http.StatusBadRequest, "invalid",
			"this port speaks HTTPS: the client sent a plain HTTP request; use an https:// URL")
	}
}

// looksLikeHTTP reports whether a TLS record header is the start of an
// HTTP request line instead, in any form: origin ("GET /"), absolute, as a
// proxy sends it ("GET http://"), CONNECT's, or HTTP/2's preface ("PRI *").
// No TLS record starts with a letter (its first byte is a content type).
func looksLikeHTTP(h []byte) bool {
	for _, m := range []string{"GET ", "HEAD ", "POST ", "PUT ", "DELET", "OPTIO", "PATCH", "CONNE", "TRACE", "PRI *"} {
		if bytes.HasPrefix(h, []byte(m)) {
			return true
		}
	}
	return false
}

func (c *rawErrorConn) Write(p []byte) (int, error) {
	status, detail, ok := parseRawError(p)
	if ok && c.readErr.Load() {
		return len(p), nil // see readErr
	}
	if !ok {
		if !expectationFailedAnswer(p) {
			return c.Conn.Write(p)
		}
		// net/http refuses an Expect other than 100-continue with an empty
		// 417 before any handler runs; no handler of the server answers 417.
		status, detail = http.StatusExpectationFailed, ""
	}
	code, msg := rawErrorMessage(status, detail)
	if status == http.StatusBadRequest && c.stalled.Load() {
		status, code = http.StatusRequestTimeout, "timeout"
		msg = "the request line and headers did not arrive within the header timeout (" + c.l.headerTimeout.String() +
			"): the client sent them too slowly or stopped; nothing was done"
	}
	if err := c.answer(c.Conn, status, code, msg); err != nil {
		return 0, err
	}
	return len(p), nil
}

// remote is the client's address, "" when the connection has none.
func (c *rawErrorConn) remote() string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// answer writes the JSON error on w, with "Connection: close" (net/http
// closes the connection after a raw error), and logs it.
func (c *rawErrorConn) answer(w io.Writer, status int, code, msg string) error {
	id := c.l.ids.next()
	body := appendErrorJSON(nil, code, msg, id)
	b := make([]byte, 0, 256+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nContent-Type: application/json\r\nX-Request-Id: "...)
	b = append(b, id...)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.l.log.LogAttrs(context.Background(), slog.LevelInfo, "request failed",
		slog.String("request_id", id),
		slog.String("remote", c.remote()),
		slog.Int("status", status),
		slog.String("op", "http.parse"),
		slog.String("class", rawErrorClass(code)),
		slog.String("error", bound(msg, maxLogError)))
	_, err := w.Write(b)
	return err
}

// rawErrorClass is the log's class of a raw error answer: the client's
// slowness is transient, as a body that stopped arriving is; anything else
// net/http refuses is an invalid request.
func rawErrorClass(code string) string {
	if code == "timeout" {
		return fault.Transient.String()
	}
	return fault.Invalid.String()
}

// expectationFailedAnswer reports whether p is net/http's answer to an
// unsupported Expect, to an HTTP/1.1 or an HTTP/1.0 request.
func expectationFailedAnswer(p []byte) bool {
	const status = " 417 Expectation Failed\r\n"
	return bytes.HasPrefix(p, []byte("HTTP/1.1"+status)) || bytes.HasPrefix(p, []byte("HTTP/1.0"+status))
}

// netHTTPErrorHeaders are the headers of net/http's own error answers
// (net/http.conn.serve).
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// parseRawError recognises p as one of net/http's own error answers,
// "HTTP/1.1 " status netHTTPErrorHeaders body, and returns its status and
// net/http's detail (the text after "Status Text: ", if any).
func parseRawError(p []byte) (status int, detail string, ok bool) {
	const proto = "HTTP/1.1 "
	if len(p) < len(proto)+3 || !bytes.HasPrefix(p, []byte(proto)) || (p[len(proto)] != '4' && p[len(proto)] != '5') {
		return 0, "", false
	}
	line := p[len(proto):]
	end := bytes.IndexByte(line, '\r')
	if end < 3 || !bytes.HasPrefix(line[end:], []byte(netHTTPErrorHeaders)) {
		return 0, "", false
	}
	line = line[:end]
	status, err := strconv.Atoi(string(line[:3]))
	if err != nil {
		return 0, "", false
	}
	if _, d, found := bytes.Cut(line, []byte(": ")); found {
		detail = string(d)
	}
	return status, detail, true
}

// rawErrorMessage words net/http's error for the client. net/http's
// details are its own fixed texts, never the client's bytes.
func rawErrorMessage(status int, detail string) (code, msg string) {
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		return "too_large", "request headers are larger than the server accepts"
	case http.StatusNotImplemented:
		return "invalid", "unsupported Transfer-Encoding: send the body with a Content-Length or chunked"
	case http.StatusHTTPVersionNotSupported:
		return "invalid", "unsupported HTTP version: use HTTP/1.1"
	case http.StatusExpectationFailed:
		return "invalid", "unsupported Expect header: the server supports only Expect: 100-continue"
	}
	if detail != "" {
		return "invalid", "malformed request: " + detail
	}
	return "invalid", "malformed request: the request line or a header could not be parsed " +
		"(a space or a malformed escape in the path, where '%' must begin two hex digits, such as %25 for '%' itself; " +
		"a missing, repeated or malformed Host or Content-Length; or a malformed header line)"
}

// JSONErrors wraps h, a handler that answers its errors with http.Error
// (the handlers the admin listener mounts from other packages: metrics,
// profiles, tenant figures; or a bare ServeMux's own 404 and 405), so that
// every request gets an X-Request-ID (the client's when it is valid) and
// every such error the JSON error body with that id, as the API's errors
// have. Under a [Server] the id is the one it gave the request (from
// [reqctx]). The code is the class of the status
// (fault.ClassOfHTTPStatus), the message http.Error's text. Answers that
// are not plain-text errors, successes and JSON errors alike, pass through
// as they are.
func JSONErrors(h http.Handler) http.Handler {
	ids := newIDGen()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := reqctx.RequestID(r.Context())
		if id == "" {
			var ok bool
			if id, ok = sanitizeRequestID(r.Header.Get("X-Request-Id")); !ok {
				id = ids.next()
			}
		}
		w.Header().Set("X-Request-Id", id)
		ew := &textErrorWriter{ResponseWriter: w, id: id}
		h.ServeHTTP(ew, r)
		ew.finish()
	})
}

// textErrorWriter holds back a plain-text error answer (status 400 or more
// with Content-Type text/plain, which is what http.Error writes) and writes
// it as the JSON error when the handler returns.
type textErrorWriter struct {
	http.ResponseWriter
	id      string
	started bool   // the header went out as the handler wrote it
	status  int    // a held-back error's status; 0 when none
	msg     []byte // its text, bounded
}

func (w *textErrorWriter) WriteHeader(code int) {
	switch {
	case w.started || w.status != 0:
		return // net/http ignores a second WriteHeader too
	case code >= 400 && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain"):
		w.status = code
		return
	case code >= 200:
		w.started = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *textErrorWriter) Write(p []byte) (int, error) {
	if !w.started && w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.status == 0 {
		return w.ResponseWriter.Write(p)
	}
	w.msg = append(w.msg, p[:min(len(p), max(0, maxLogError-len(w.msg)))]...)
	return len(p), nil
}

// Unwrap lets http.ResponseController reach the connection.
func (w *textErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *textErrorWriter) finish() {
	if w.status == 0 {
		return
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	code := fault.ClassOfHTTPStatus(w.status).String()
	if w.status == http.StatusMethodNotAllowed {
		code = "method_not_allowed"
	}
	w.ResponseWriter.WriteHeader(w.status)
	w.ResponseWriter.Write(appendErrorJSON(nil, code, strings.TrimSpace(string(w.msg)), w.id))
}
