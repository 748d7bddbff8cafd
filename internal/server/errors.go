package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairnstore/cairn/internal/deadline"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resilience"
)

// Error answers.
//
// Every error answer is JSON:
//
//	{"error":{"code":"not_found","message":"…","request_id":"…"}}
//
// code is the fault class name (fault.Class.String), or a more specific
// code where the class table has no row: too_large (413),
// method_not_allowed (405), timeout (408), unsupported_encoding (415, with
// Accept-Encoding), catching_up (503 with Retry-After: a CatchingUpError, a
// request the node cannot decide before it holds the tenant's documents).
// The status comes from
// fault.Class.HTTPStatus: 400 invalid, 401 unauthorized (with
// WWW-Authenticate: Bearer), 403 forbidden, 404 not_found, 409 conflict,
// 412 precondition_failed, 503 transient or exhausted (with Retry-After), 500
// otherwise. 5xx messages show only what a fault.Error's Msg says, never a
// raw cause.
//
// A write whose deadline passes before it is made answers 408 timeout when
// the deadline was the client's own (X-Request-Timeout; a client error,
// logged at Info) and 503 when it was the node's (its failure to finish in
// time); both say nothing was written ([resilience.ClientDeadlineExceeded]).
// A body that stopped arriving is 408 too. The requests net/http answers
// before any handler (a malformed percent-escape in the path, a missing
// Host) get the same JSON error when the listener is wrapped with
// [Server.Listener].

// httpError overrides the status and code a fault class would give, for the
// answers the class table cannot express (413 too_large, 405, 408, 415). It
// unwraps to the classified cause, so logs and errors.Is still see the class.
type httpError struct {
	status    int
	code      string
	challenge string // WWW-Authenticate value for 401s
	allow     string // Allow value for 405s
	accept    string // Accept-Encoding value for 415s
	// unauthenticated marks the answer to a request that failed
	// authentication (a 401, or the 429 past the node's budget of them):
	// its connection closes after it.
	unauthenticated bool
	err             error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

// tooLarge is the 413 for a body over the limit.
func tooLarge(limit int64, op string) error {
	return &httpError{
		status: http.StatusRequestEntityTooLarge, code: "too_large",
		err: fault.New(fault.Invalid, fault.Context{Op: op},
			"body larger than "+strconv.FormatInt(limit, 10)+" bytes"),
	}
}

// invalid is a 400 with a message for the client.
func invalid(op, msg string) error {
	return fault.New(fault.Invalid, fault.Context{Op: op}, msg)
}

// CatchingUpError is the answer to a request a node cannot decide while
// its tenant is catching up with a backend (it may lack the document the
// request is about): 503 with the code "catching_up" and Retry-After.
// Err, the cause, is classified (fault.Transient when nothing else, or
// when it is the document's absence).
type CatchingUpError struct {
	Tenant string
	Msg    string        // what could not be decided, for the client
	Wait   time.Duration // Retry-After; 0 means Options.RetryAfter
	Err    error
}

func (e *CatchingUpError) Error() string {
	m := "tenant " + e.Tenant + " is catching up with its backends: " + e.Msg
	if e.Err != nil {
		m += ": " + e.Err.Error()
	}
	return m
}

func (e *CatchingUpError) Unwrap() error {
	switch {
	case e.Err == nil:
		return fault.New(fault.Transient, fault.Context{Tenant: e.Tenant}, e.Msg)
	case fault.ClassOf(e.Err) == fault.Unknown, fault.ClassOf(e.Err) == fault.NotFound:
		// A document the node does not hold yet is why it cannot decide,
		// not the answer: logged and counted as the 503 it is.
		return fault.E(fault.Transient, fault.Context{Tenant: e.Tenant}, e.Err)
	}
	return e.Err
}

// RetryAfter implements the hint fault.RetryAfter looks for.
func (e *CatchingUpError) RetryAfter() time.Duration { return e.Wait }

// statusOf returns the HTTP status and the error code for err.
func statusOf(err error) (status int, code string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.code
	}
	var ce *CatchingUpError
	if errors.As(err, &ce) {
		return http.StatusServiceUnavailable, "catching_up"
	}
	c := fault.ClassOf(err)
	return c.HTTPStatus(), c.String()
}

// ClientMessage is what a client is told of err answered with status: its
// message for a client's mistake (below 500); for the node's own failure,
// only a message written for users (the outermost fault.Error Msg in the
// chain), else the status text, so that internal paths, addresses and the
// store's internals do not leak. The request id finds the full error in
// the log. The RESP front words its errors the same way.
func ClientMessage(err error, status int) string {
	if status < 500 {
		return fault.MessageOf(err)
	}
	var ce *CatchingUpError
	if errors.As(err, &ce) {
		return "tenant " + ce.Tenant + " is catching up with its backends: " + ce.Msg
	}
	var fe *fault.Error
	for e := err; errors.As(e, &fe); e = fe.Err {
		if fe.Msg != "" {
			return fe.Msg
		}
	}
	return http.StatusText(status)
}

// deadlineAnswer words a write whose request deadline passed before the
// write was made. The store gives a write up only before staging it (a
// staged write always completes), so nothing was written. Outcomes:
//   - the deadline the client asked for (resilience.TimeoutHeader): 408
//     timeout, a client error, logged below Error: the client chose a
//     time in which the write could not be made;
//   - the node's own deadline (Options.Deadline's default or maximum): 503
//     with Retry-After, the node's failure to finish in time;
//   - anything else (a read, a timeout inside the node while the request
//     still had time): err unchanged.
func deadlineAnswer(r *http.Request, err error) error {
	ctx := r.Context()
	if r.Method == http.MethodGet || r.Method == http.MethodHead ||
		!errors.Is(err, context.DeadlineExceeded) || !errors.Is(deadline.Err(ctx), context.DeadlineExceeded) {
		return err
	}
	op := fault.ContextOf(err).Op
	if resilience.ClientDeadlineExceeded(ctx) {
		return &httpError{status: http.StatusRequestTimeout, code: "timeout",
			err: &fault.Error{Class: fault.Canceled, Context: fault.Context{Op: op},
				Msg: "the request's deadline (" + resilience.TimeoutHeader + ": " + bound(r.Header.Get(resilience.TimeoutHeader), 32) +
					") passed before the write was made; nothing was written", Err: err}}
	}
	return &fault.Error{Class: fault.Transient, Context: fault.Context{Op: op},
		Msg: "the node did not make the write within its request deadline; nothing was written", Err: err}
}

// WriteError answers err as every handler of the server does: the status
// and code from its fault class, the JSON error body with the request's
// id. It is for handlers mounted from other packages (the console).
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeError(w, r, err)
}

// writeError answers err as a JSON error, unless the response has started
// (then nothing can be said; the caller aborts the connection). It records
// err on the exchange for the log line.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	err = deadlineAnswer(r, err)
	x := exchangeFrom(r.Context()) // w may be a middleware's wrapper
	if x == nil {
		x = exchangeOf(w)
	}
	if x != nil {
		x.failure = err
		if x.status != 0 {
			return
		}
	}
	status, code := statusOf(err)
	if status == http.StatusRequestTimeout {
		// The read timeout that ended the body runs out with the write
		// timeout (both about the request's start): without more time the
		// answer would be cut with the connection.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeoutAnswerGrace))
	}
	s.errorHeaders(w.Header(), err, status)
	if r.ContentLength != 0 && (x == nil || !x.bodyRead) {
		leaveBody(w)
	} else if he := (*httpError)(nil); status == http.StatusUnauthorized || errors.As(err, &he) && he.unauthenticated {
		// A client without a valid token keeps no connection (one of
		// --max-conns) open for the idle timeout: only for the time it
		// takes to send a request.
		w.Header().Set("Connection", "close")
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	var id string
	if x != nil {
		id = x.info.ID
	}
	b := appendErrorJSON(nil, code, ClientMessage(err, status), id)
	if se := (*doc.SiblingsError)(nil); errors.As(err, &se) {
		b = append(appendSiblingsError(b[:len(b)-3], se), "}}\n"...) // inside the error object
	}
	w.Write(b)
}

// leaveBody makes the answer, still to be written, end the connection
// without reading the rest of the request body. Before a successful
// answer net/http reads up to 256 KiB of a body the handler left unread,
// to keep the connection, and after any answer it reads that much again
// before closing it, until the read timeout: a client still sending (a
// stream, a slow body) or sending nothing (no token, say) would wait for
// its answer or hold one of --max-conns that long.
func leaveBody(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// timeoutAnswerGrace is the time a 408 answer gets to be written.
const timeoutAnswerGrace = 5 * time.Second

// appendErrorJSON appends {"error":{"code":…,"message":…,"request_id":…}}.
func appendErrorJSON(b []byte, code, msg, id string) []byte {
	b = append(b, `{"error":`...)
	b = appendErrorObject(b, code, msg, id)
	return append(b, "}\n"...)
}

func appendErrorObject(b []byte, code, msg, id string) []byte {
	b = append(b, `{"code":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, id)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD
// (as encoding/json does); <, > and & are escaped so a body sniffed as HTML
// is harmless; U+2028 and U+2029 are escaped for JavaScript consumers.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Header values shared by every response; net/http never modifies them and
// Header.Set replaces the slice rather than writing into it.
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// withStatus makes writeError and statusOf answer err with status and
// code, for an answer a fault class cannot express (a 429 for one tenant's
// share of a resource, a 408 for a body sent too slowly). err keeps its
// class for logs and errors.Is.
func withStatus(status int, code string, err error) error {
	return &httpError{status: status, code: code, err: err}
}

// errorHeaders sets the headers of an error answer of status for err: the
// challenge, Allow or Accept-Encoding it names, the siblings of a
// conflict, Retry-After on a 503 or 429, the JSON content type, no-store;
// and drops those a success had set (ETag, Content-Length).
func (s *Server) errorHeaders(h http.Header, err error, status int) {
	var he *httpError
	if errors.As(err, &he) {
		if he.challenge != "" {
			h.Set("WWW-Authenticate", he.challenge)
		}
		if he.allow != "" {
			h.Set("Allow", he.allow)
		}
		if he.accept != "" {
			h.Set("Accept-Encoding", he.accept)
		}
	}
	var se *doc.SiblingsError
	if errors.As(err, &se) {
		// A document with open siblings: name them, in the If-Match list
		// syntax, and the set, so a client can resolve without parsing the
		// body (a HEAD has none).
		h.Set("X-Cairn-Siblings", strings.Join(se.Siblings, ", "))
		h.Set("X-Cairn-Sibling-Set", se.ETag)
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		// An error that knows how long to wait (fault.WithRetryAfter, or a
		// RetryAfter method: a breaker, a limiter) says so; others get
		// Options.RetryAfter.
		d := s.retryAfter
		if ra, ok := fault.RetryAfter(err); ok && ra > 0 {
			d = ra
		}
		h.Set("Retry-After", fault.FormatRetryAfter(d))
	}
	// Headers set for a success (ETag, Content-Length) must not leak into an
	// error answer.
	h.Del("ETag")
	h.Del("Content-Length")
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
}
