package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// rawConn is one keep-alive HTTP/1.1 connection that writes pre-built
// requests and parses just enough of each response to find its end: the
// status line, Content-Length, Transfer-Encoding: chunked and
// Connection: close. Anything else in a response is skipped unread.
type rawConn struct {
	addr     string
	deadline time.Time // of the connection: the run's end plus grace
	t        *target   // builds the requests that are not pre-built
	br       *bufio.Reader
	req      []byte // scratch for PUT requests

	mu sync.Mutex // guards c against interrupt; the owner reads it without
	c  net.Conn   // the connection, nil between an error and the next dial
	// interrupted is set by interrupt, under mu: no dial after it.
	interrupted bool
}

var errInterrupted = errors.New("loadgen: run interrupted")

func (rc *rawConn) roundTrip(put bool, path, rawGet []byte) (int, error) {
	if rc.c == nil {
		if err := rc.dial(); err != nil {
			return 0, err
		}
	}
	req := rawGet
	if req == nil {
		req = rc.request(put, path)
	}
	if _, err := rc.c.Write(req); err != nil {
		rc.drop()
		return 0, fmt.Errorf("write: %w", err)
	}
	status, closeAfter, err := readResponse(rc.br)
	if err != nil {
		rc.drop()
		return 0, fmt.Errorf("read response: %w", err)
	}
	if closeAfter {
		rc.drop()
	}
	return status, nil
}

func (rc *rawConn) request(put bool, path []byte) []byte {
	if put {
		rc.req = rc.t.appendPut(rc.req[:0], path)
	} else {
		rc.req = rc.t.appendGet(rc.req[:0], string(path))
	}
	return rc.req
}

func (rc *rawConn) dial() error {
	c, err := net.DialTimeout("tcp", rc.addr, 5*time.Second)
	if err != nil {
		return err
	}
	c.SetDeadline(rc.deadline)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.interrupted {
		c.Close()
		return errInterrupted
	}
	rc.c = c
	if rc.br == nil {
		rc.br = bufio.NewReaderSize(c, 16<<10)
	} else {
		rc.br.Reset(c)
	}
	return nil
}

func (rc *rawConn) drop() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.c != nil {
		rc.c.Close()
		rc.c = nil
	}
}

func (rc *rawConn) interrupt() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.interrupted = true
	if rc.c != nil {
		rc.c.SetDeadline(time.Now()) // a blocked Read or Write returns
	}
}

func (rc *rawConn) close() { rc.drop() }

// readResponse reads one response from br, body included, and returns its
// status and whether the server will close the connection after it.
func readResponse(br *bufio.Reader) (status int, closeAfter bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, false, fmt.Errorf("malformed status line %q", line)
		}
		status = status*10 + int(c-'0')
	}
	closeAfter = line[7] == '0' // HTTP/1.0 closes unless told otherwise; close enough
	length, chunked := int64(-1), false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		if len(line) <= 2 { // the blank line ending the header
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return 0, false, fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = parseUint(value, 10); err != nil {
				return 0, false, fmt.Errorf("Content-Length %q: %w", value, err)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closeAfter = bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case status/100 == 1 || status == 204 || status == 304:
		return status, closeAfter, nil
	case chunked:
		return status, closeAfter, skipChunked(br)
	case length >= 0:
		_, err = br.Discard(int(length))
		return status, closeAfter, err
	}
	return 0, false, errors.New("response has neither Content-Length nor chunked encoding")
}

// skipChunked reads a chunked body and its trailer.
func skipChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte{';'})
		n, err := parseUint(size, 16)
		if err != nil {
			return fmt.Errorf("chunk size %q: %w", size, err)
		}
		if n == 0 {
			break
		}
		if _, err := br.Discard(int(n) + 2); err != nil { // the data and its CRLF
			return err
		}
	}
	for { // trailer fields, then the blank line
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			return nil
		}
	}
}

func parseUint(b []byte, base int64) (int64, error) {
	if len(b) == 0 || len(b) > 15 {
		return 0, errors.New("not a number")
	}
	var n int64
	for _, c := range b {
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case base == 16 && c|0x20 >= 'a' && c|0x20 <= 'f':
			d = int64(c|0x20-'a') + 10
		default:
			return 0, errors.New("not a number")
		}
		n = n*base + d
	}
	return n, nil
}
