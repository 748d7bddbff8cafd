package resp

import (
	"errors"
	"strconv"
)

// framer checks a connection's bytes against the RESP framing and hands
// them on one whole command at a time, so that redcon's parser only ever
// sees complete commands in the multibulk form, within the limits below.
//
// Why: redcon's reader trusts the lengths it is sent. A bulk length near
// MaxInt64 overflows its bounds check and panics the process; a multibulk
// count near it makes it loop that many times on every read while the
// arguments have not arrived; an inline command costs it time quadratic in
// the line's length; and what it buffers of a partial command grows by
// doubling, past any bound kept beside it. All of that happens before
// AUTH. The framer refuses such input with the error Redis gives and
// closes the connection, and turns inline commands (telnet style) into the
// multibulk form, split as Redis splits them.
//
// Limits, as Redis's where it has one: a multibulk count of at most 1M
// arguments, a bulk length and a whole command of at most max bytes
// (--max-body-bytes plus 64 KiB), an inline line of at most 64 KiB. A
// multibulk count of zero or less is skipped, as Redis skips it.
//
// Before the connection has signed in (authed false), a command is at most
// preAuthArgs arguments and preAuthBytes bytes, as Redis limits an
// unauthenticated client (10 arguments, each of at most 16 KiB; here the
// whole command), so that no one without a token makes the node hold more
// than that per connection. The framer then frames one command at a time,
// so the command after an AUTH is framed under the limits the AUTH leaves.
//
// It is used only by its connection's goroutine.
type framer struct {
	max    int  // a command's most bytes
	authed bool // the connection has signed in; set by the handler after each command
	buf    []byte
	// buf[sent:ready] is whole multibulk commands not yet handed on;
	// buf[ready:] the bytes after them, not yet framed, of which
	// buf[ready:pos] are the parsed part of a partial command.
	sent, ready, pos int
	args             int    // arguments left to parse in the partial multibulk command; 0 at a command's start
	scanned          int    // how far a partial inline line at buf[ready:] was searched for its end
	inline           []byte // an inline command rewritten as multibulk, handed on before anything after it
	err              error  // the framing error, reported once what came before it has been handed on
}

const (
	keepBuffer    = 64 << 10
	maxArgs       = 1 << 20 // Redis's limit on a multibulk count
	maxInline     = 64 << 10
	maxLengthLine = 32 // "*" or "$", a length, CRLF: more than this is no length
	preAuthArgs   = 10
	preAuthBytes  = 16 << 10
)

// errProtocol is a framing error; its text follows "-ERR Protocol error: ".
type errProtocol struct{ msg string }

func (e *errProtocol) Error() string { return "Protocol error: " + e.msg }

// tlsHandshake starts a TLS record of a handshake: a client's first bytes
// when it speaks TLS to a port that does not, and never a RESP command's.
const tlsHandshake = 0x16

// errTLSToPlain refuses a client that speaks TLS to a plain RESP port; a
// RESP error is all it can be told, though it will not read it as one.
var errTLSToPlain = &errProtocol{"this port serves plain RESP, and the client sent a TLS handshake: connect without TLS, or to the port that serves it"}

// errTooLarge is a command over the limit.
var errTooLarge = errors.New("resp: command too large")

// pending is what can be handed on now: whole multibulk commands, or the
// rewritten inline command.
func (f *framer) pending() []byte {
	if f.sent < f.ready {
		return f.buf[f.sent:f.ready]
	}
	return f.inline
}

// take marks n bytes of pending as handed on.
func (f *framer) take(n int) {
	if f.sent < f.ready {
		f.sent += n
		return
	}
	f.inline = f.inline[n:]
}

// space returns free room at the end of buf for a read, first moving the
// unframed bytes to the front once everything before them was handed on,
// and growing buf when a partial command fills it.
func (f *framer) space() []byte {
	if f.sent == f.ready && f.ready > 0 {
		n := copy(f.buf, f.buf[f.ready:])
		f.buf = f.buf[:n]
		f.pos -= f.ready
		f.scanned = max(0, f.scanned-f.ready)
		f.sent, f.ready = 0, 0
	}
	if len(f.buf) == 0 && cap(f.buf) > keepBuffer {
		f.buf = nil // a large command's room is not kept for the connection's life
	}
	if len(f.buf) == cap(f.buf) {
		grown := make([]byte, len(f.buf), max(4096, 2*cap(f.buf)))
		copy(grown, f.buf)
		f.buf = grown
	}
	return f.buf[len(f.buf):cap(f.buf)]
}

// frame frames what buf holds past ready: it moves ready past each whole
// multibulk command, and stops at an inline one, which it rewrites into
// inline once nothing is left before it. A framing error is kept in err.
func (f *framer) frame() {
	for f.err == nil && len(f.inline) == 0 {
		if f.args == 0 && f.pos == f.ready {
			if f.ready == len(f.buf) || (!f.authed && f.ready > f.sent) {
				return
			}
			if f.buf[f.ready] == tlsHandshake && !f.authed {
				f.err = errTLSToPlain
				return
			}
			if f.buf[f.ready] != '*' {
				if f.ready > f.sent {
					return // hand on what precedes the inline command first
				}
				if !f.frameInline() {
					return // the line is not all there yet, or an error
				}
				continue
			}
			nl, ok := f.line(f.ready, maxLengthLine, "invalid multibulk length")
			if !ok {
				return
			}
			count, ok := parseLen(f.buf[f.ready+1 : nl-1])
			switch {
			case !ok || count > maxArgs:
				f.err = &errProtocol{"invalid multibulk length"}
				return
			case !f.authed && count > preAuthArgs:
				f.err = &errProtocol{"unauthenticated multibulk length"}
				return
			case count <= 0: // an empty command: skipped, once what precedes it is handed on
				if f.ready > f.sent {
					return
				}
				f.sent, f.ready, f.pos = nl+1, nl+1, nl+1
				continue
			}
			f.args, f.pos = count, nl+1
		}
		for f.args > 0 {
			if f.pos == len(f.buf) {
				return
			}
			if c := f.buf[f.pos]; c != '$' {
				f.err = &errProtocol{"expected '$', got '" + printable(c) + "'"}
				return
			}
			nl, ok := f.line(f.pos, maxLengthLine, "invalid bulk length")
			if !ok {
				return
			}
			size, ok := parseLen(f.buf[f.pos+1 : nl-1])
			if !ok || size < 0 {
				f.err = &errProtocol{"invalid bulk length"}
				return
			}
			if nl+1+size+2-f.ready > f.max { // the command so far, with this argument
				f.err = errTooLarge
				return
			}
			if !f.authed && nl+1+size+2-f.ready > preAuthBytes {
				f.err = &errProtocol{"unauthenticated bulk length"}
				return
			}
			end := nl + 1 + size + 2
			if end > len(f.buf) {
				return
			}
			if f.buf[end-2] != '\r' || f.buf[end-1] != '\n' {
				f.err = &errProtocol{"invalid bulk length"}
				return
			}
			f.pos = end
			f.args--
		}
		f.ready = f.pos
	}
}

// parseLen parses a multibulk count or bulk length as Redis does
// (string2ll): an optional '-', then digits with no leading zero. Eighteen
// digits at most keep it far from overflowing an int; no length within the
// limits needs more.
func parseLen(b []byte) (int, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 || (b[0] == '0' && (len(b) > 1 || neg)) {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// line finds the LF ending the line at buf[at], which must be CRLF-ended
// within limit bytes. It reports false when the line is not all there yet,
// or, with err set, when it is longer than limit or ends without CR.
func (f *framer) line(at, limit int, bad string) (int, bool) {
	for i := at; i < len(f.buf); i++ {
		if f.buf[i] == '\n' {
			if i == at || f.buf[i-1] != '\r' {
				f.err = &errProtocol{bad}
				return 0, false
			}
			return i, true
		}
		if i-at >= limit {
			f.err = &errProtocol{bad}
			return 0, false
		}
	}
	if len(f.buf)-at > limit {
		f.err = &errProtocol{bad}
	}
	return 0, false
}

// frameInline rewrites the inline command at buf[ready] as multibulk into
// inline, when its line is all there; it reports whether it was.
func (f *framer) frameInline() bool {
	at := f.ready
	nl := -1
	limit := maxInline
	if !f.authed {
		limit = preAuthBytes
	}
	// From where the last search stopped: a line that arrives a byte at a
	// time is searched once, not once per byte.
	for i := max(at, f.scanned); i < len(f.buf) && i-at <= limit; i++ {
		if f.buf[i] == '\n' {
			nl = i
			break
		}
	}
	if nl < 0 {
		f.scanned = len(f.buf)
		if len(f.buf)-at > limit {
			f.err = &errProtocol{"too big inline request"}
		}
		return false
	}
	f.scanned = 0
	line := f.buf[at:nl]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	args, ok := splitArgs(line)
	if !ok {
		f.err = &errProtocol{"unbalanced quotes in request"}
		return false
	}
	if !f.authed && len(args) > preAuthArgs {
		f.err = &errProtocol{"unauthenticated multibulk length"}
		return false
	}
	f.ready, f.pos, f.sent = nl+1, nl+1, nl+1
	if len(args) == 0 {
		return true // an empty line: nothing to run, as in Redis
	}
	out := strconv.AppendInt(append(f.inline[:0], '*'), int64(len(args)), 10)
	out = append(out, "\r\n"...)
	for _, a := range args {
		out = strconv.AppendInt(append(out, '$'), int64(len(a)), 10)
		out = append(append(append(out, "\r\n"...), a...), "\r\n"...)
	}
	if len(out) > f.max { // the bound is on the command redcon gets
		f.err = errTooLarge
		return false
	}
	f.inline = out
	return true
}

// splitArgs splits an inline command line as Redis does (sdssplitargs):
// arguments are separated by whitespace (and NUL); "double quotes" take
// the escapes \n \r \t \b \a \xHH and a backslash before any other byte;
// 'single quotes' take \' only; a closing quote must be followed by whitespace or
// the end of the line. It reports false for quotes that do not close.
func splitArgs(line []byte) ([][]byte, bool) {
	var args [][]byte
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return args, true
		}
		var arg []byte
		var quote byte // the quote the argument is in, or 0
	token:
		for ; ; i++ {
			if i == len(line) {
				if quote != 0 {
					return nil, false
				}
				break
			}
			c := line[i]
			switch {
			case quote == 0 && isSpace(c):
				break token
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			case quote == 0:
				arg = append(arg, c)
			case c == quote:
				if !closes(line, i) {
					return nil, false
				}
				i++
				break token
			case quote == '"' && c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
				arg = append(arg, unhex(line[i+2])<<4|unhex(line[i+3]))
				i += 3
			case quote == '"' && c == '\\' && i+1 < len(line):
				i++
				arg = append(arg, unescape(line[i]))
			case quote == '\'' && c == '\\' && i+1 < len(line) && line[i+1] == '\'':
				i++
				arg = append(arg, '\'')
			default:
				arg = append(arg, c)
			}
		}
		if arg == nil {
			arg = []byte{}
		}
		args = append(args, arg)
	}
}

// closes reports whether the quote at line[i] may close its argument: it
// must end the line or be followed by a separator.
func closes(line []byte, i int) bool { return i+1 == len(line) || isSpace(line[i+1]) }

// isSpace is a separator of inline arguments: whitespace, and NUL (which
// ends the line in Redis, a C string there).
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}

// printable quotes a byte of a protocol error as Redis does: itself when
// printable, else its escape.
func printable(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(rune(c))
	}
	q := strconv.QuoteRune(rune(c))
	return q[1 : len(q)-1]
}
