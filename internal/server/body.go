package server

import (
	"compress/flate"
	"compress/gzip"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/cairnstore/cairn/internal/fault"
)

// Bad input.
//
// A bad tenant or key is a 400 naming it; an empty body 400; a body over
// Options.MaxBodyBytes 413, refused from Content-Length before reading when
// possible; a body the validator rejects 400 with the byte offset. In every
// such case Docs is not called, so nothing is stored. A body is read into
// memory that grows as bytes arrive (at most twice what arrived, plus 4
// KiB), never sized from Content-Length alone. Content-Encoding gzip is
// decoded, the decoded body bounded by MaxBodyBytes too; identity is no
// coding; any other coding, or more than one, is 415 naming it.

// firstChunk is the most a body's buffer holds before bytes arrive: memory
// follows what a client sent, not what its Content-Length promised, so a
// connection that declares a large body and trickles it costs about what
// net/http's own per-connection buffers cost. A body up to this size is
// read into one allocation of exactly its length.
const firstChunk = 4 << 10

// readBody reads a document write's body. Outcomes: those of readEncoded,
// and 400 when the body is empty.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, charge *bodyCharge) ([]byte, error) {
	const op = "doc.put"
	if r.ContentLength == 0 || r.Body == nil {
		return nil, invalid(op, "empty body: a document is a JSON value")
	}
	body, err := s.readEncoded(w, r, op, s.maxBody, charge)
	switch {
	case err != nil:
		return nil, err
	case len(body) == 0:
		return nil, invalid(op, "empty body: a document is a JSON value")
	}
	return body, nil
}

// readEncoded reads a request body of at most limit bytes, decoded as its
// Content-Encoding says. Outcomes: the body; 415 for a coding other than
// gzip or identity; 413 when the body, on the wire or decoded, is over
// limit (refused from Content-Length before reading when it says so; the
// message names Options.MaxBodyBytes, the limit a client configures for);
// 400 when it is shorter than its Content-Length or not valid gzip; 408
// when it stopped arriving; 503 when, charged to the memory budget as it
// arrives (charge, nil for none), it would go over it.
func (s *Server) readEncoded(w http.ResponseWriter, r *http.Request, op string, limit int64, charge *bodyCharge) ([]byte, error) {
	gz, err := contentCoding(r, op)
	if err != nil {
		return nil, err
	}
	if r.ContentLength > limit {
		return nil, tooLarge(s.maxBody, op)
	}
	if r.Body == nil {
		return nil, nil
	}
	var rd io.Reader = http.MaxBytesReader(w, r.Body, limit)
	want := r.ContentLength
	var wire *wireReader
	if gz {
		wire = &wireReader{r: rd}
		zr, err := gzip.NewReader(wire)
		if err != nil {
			return nil, gzipError(op, s.maxBody, wire, err)
		}
		// The decoded size is bounded as the wire size is: a small body
		// may inflate to any size.
		rd, want = http.MaxBytesReader(w, zr, limit), -1
	}
	body, err := readAll(charge.reader(rd), want)
	switch {
	case err != nil && fault.ClassOf(err) == fault.Exhausted:
		return nil, err // past the memory budget (bodyCharge): 503
	case err != nil && gz:
		return nil, gzipError(op, s.maxBody, wire, err)
	case err != nil:
		return nil, bodyReadError(op, s.maxBody, err)
	}
	if x := exchangeFrom(r.Context()); x != nil {
		x.bodyRead = true
	}
	return body, nil
}

// wireReader is a request body as it comes off the connection, with the
// first error its reads met (io.EOF aside): under a gzip stream, a body
// that ended early or stopped arriving is told from gzip data that is
// damaged, which compress/gzip reports alike.
type wireReader struct {
	r   io.Reader
	err error
}

func (w *wireReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && err != io.EOF && w.err == nil {
		w.err = err
	}
	return n, err
}

// readAll reads rd to its end, or, when want is not negative, exactly want
// bytes (io.ErrUnexpectedEOF if it ends sooner). The buffer starts at
// firstChunk bytes at most and doubles as it fills, never past want, so
// memory is at most twice what arrived (plus firstChunk), and a body whose
// length was declared truthfully ends in a slice of exactly its size.
func readAll(rd io.Reader, want int64) ([]byte, error) {
	if want < 0 {
		return io.ReadAll(rd) // grows as bytes arrive
	}
	buf := make([]byte, 0, min(want, firstChunk))
	for int64(len(buf)) < want {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(want, 2*int64(cap(buf))))
			copy(grown, buf)
			buf = grown
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case int64(len(buf)) == want:
			return buf, nil
		case err == io.EOF:
			return buf, io.ErrUnexpectedEOF
		case err != nil:
			return buf, err
		}
	}
	return buf, nil
}

// acceptEncoding is what the server decodes, for the Accept-Encoding of a
// 415 (RFC 7694).
const acceptEncoding = "gzip, identity"

// contentCoding reads a request's Content-Encoding. Outcomes: false for no
// coding or identity; true for gzip (or its alias x-gzip); 415 naming the
// coding for any other, or for more than one (a body coded twice is not
// something a client of this API needs, and decoding layers multiplies the
// work a small body can cause).
func contentCoding(r *http.Request, op string) (gzip bool, err error) {
	lines, ok := r.Header["Content-Encoding"]
	if !ok {
		return false, nil
	}
	var codings []string
	for _, l := range lines {
		for c := range strings.SplitSeq(l, ",") {
			c = strings.TrimSpace(c)
			if c != "" && !strings.EqualFold(c, "identity") {
				codings = append(codings, c)
			}
		}
	}
	switch {
	case len(codings) == 0:
		return false, nil
	case len(codings) > 1:
		return false, unsupportedCoding(op, strings.Join(codings, ", "), "more than one coding")
	case strings.EqualFold(codings[0], "gzip"), strings.EqualFold(codings[0], "x-gzip"):
		return true, nil
	}
	return false, unsupportedCoding(op, codings[0], "not supported")
}

func unsupportedCoding(op, coding, why string) error {
	return &httpError{
		status: http.StatusUnsupportedMediaType, code: "unsupported_encoding", accept: acceptEncoding,
		err: fault.New(fault.Invalid, fault.Context{Op: op},
			"Content-Encoding "+strconv.Quote(bound(coding, 64))+": "+why+"; send the body with gzip or identity"),
	}
}

// gzipError words a failure to read a gzip body from wire: when the body
// itself failed under the gzip stream (cut short, stalled, over the
// limit), bodyReadError's answer for that; past the limit once inflated,
// 413; else 400 for a stream that is not gzip or is cut short.
func gzipError(op string, maxBody int64, wire *wireReader, err error) error {
	if wire.err != nil {
		return bodyReadError(op, maxBody, wire.err)
	}
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return bodyReadError(op, maxBody, err)
	}
	return &fault.Error{Class: fault.Invalid, Context: fault.Context{Op: op},
		Msg: "Content-Encoding gzip: the body is not a whole gzip stream (" + gzipReason(err) + ")", Err: err}
}

// gzipFailure reports whether err is compress/gzip's or compress/flate's
// (or a stream that ended inside a gzip member, once the body's own read
// is known to have ended well).
func gzipFailure(err error) bool {
	var ce flate.CorruptInputError
	return errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) ||
		errors.As(err, &ce) || errors.Is(err, io.ErrUnexpectedEOF)
}

// gzipReason names what compress/gzip and compress/flate found, without
// any text of a network error.
func gzipReason(err error) string {
	var ce flate.CorruptInputError
	switch {
	case errors.Is(err, gzip.ErrHeader):
		return "bad header: not gzip data, or something after the gzip data"
	case errors.Is(err, gzip.ErrChecksum):
		return "bad checksum"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "cut short, too short to be gzip data, or followed by a few bytes that are not gzip"
	case errors.As(err, &ce):
		return "corrupt data"
	}
	return "unreadable"
}

// endedEarly says what io.ErrUnexpectedEOF from a request body means.
const endedEarly = "ended early (before its Content-Length, or inside a chunk)"

// bodyReadError words a failure to read a request body: 413 past the
// limit, 408 when the client was too slow (the server's ReadTimeout), 503
// shutting_down when the node closed the connection under it, 400
// otherwise (a body cut short). The messages never carry the cause's text:
// a network error names socket addresses. The log line has the cause.
func bodyReadError(op string, maxBody int64, err error) error {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return tooLarge(maxBody, op)
	case errors.As(err, &ne) && ne.Timeout():
		return &httpError{status: http.StatusRequestTimeout, code: "timeout",
			err: &fault.Error{Class: fault.Transient, Context: fault.Context{Op: op},
				Msg: "request body did not arrive within the read timeout (it stopped arriving, or came too slowly); nothing was stored", Err: err}}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &fault.Error{Class: fault.Invalid, Context: fault.Context{Op: op},
			Msg: "request body " + endedEarly + "; nothing was stored", Err: err}
	case errors.Is(err, net.ErrClosed):
		// Only the node closes its side: its drain ran out (--drain-timeout)
		// with the body still arriving. Not the client's doing.
		return withStatus(http.StatusServiceUnavailable, "shutting_down", &fault.Error{Class: fault.Transient,
			Context: fault.Context{Op: op}, Msg: "the node closed the connection as it shut down, with the request body still arriving; nothing was stored", Err: err})
	default:
		return &fault.Error{Class: fault.Invalid, Context: fault.Context{Op: op},
			Msg: "request body could not be read; nothing was stored", Err: err}
	}
}

// decodedBody returns r's body decoded as its Content-Encoding says, for a
// route that streams its body (ingest): gzip decompressed, no coding or
// identity as it is. Its error goes to writeError: 415
// for another coding or more than one, 400 for a body that does not start
// as gzip, 408 for one that stopped arriving. The decoded stream is not
// bounded here; a streaming route bounds what it holds at once.
//
// wire, for a gzip body, is the body as it comes off the connection, under
// the decoding (wireReader); nil otherwise.
func decodedBody(r *http.Request, op string) (body io.ReadCloser, wire *wireReader, err error) {
	gz, err := contentCoding(r, op)
	if err != nil || !gz || r.Body == nil || r.Body == http.NoBody {
		return r.Body, nil, err
	}
	wire = &wireReader{r: r.Body}
	zr, err := gzip.NewReader(wire)
	if err != nil {
		return nil, nil, gzipError(op, 0, wire, err)
	}
	return zr, wire, nil // net/http closes r.Body; gzip.Reader.Close does not
}
