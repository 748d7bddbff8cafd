package server

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// TestRawErrorConnReadAllocs: the wrapper every request's reads go through
// allocates nothing on a read that succeeds.
func TestRawErrorConnReadAllocs(t *testing.T) {
	c := &rawErrorConn{Conn: okConn{}}
	buf := make([]byte, 64)
	if n := testing.AllocsPerRun(100, func() { c.Read(buf) }); n != 0 {
		t.Fatalf("a successful Read allocated %v times; want 0", n)
	}
}

// okConn is a connection whose reads always succeed.
type okConn struct{ net.Conn }

func (okConn) Read(p []byte) (int, error) { return len(p), nil }

// TestRawErrorAfterFailedRead: after a read failed (a TLS handshake that
// did not complete), net/http's raw 400 is neither written nor logged: the
// connection speaks no HTTP, and a scanner must not fill the log.
func TestRawErrorAfterFailedRead(t *testing.T) {
	var logs bytes.Buffer
	l := &rawErrorListener{log: slog.New(slog.NewJSONHandler(&logs, nil)), ids: newIDGen()}
	conn := &recordConn{readErr: errors.New("tls: client offered only unsupported versions")}
	c := &rawErrorConn{Conn: conn, l: l}
	if _, err := c.Read(make([]byte, 16)); err == nil {
		t.Fatal("the read did not fail")
	}
	raw := "HTTP/1.1 400 Bad Request" + netHTTPErrorHeaders + "400 Bad Request"
	if n, err := c.Write([]byte(raw)); n != len(raw) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if conn.written.Len() != 0 || logs.Len() != 0 {
		t.Fatalf("wrote %q and logged %q after a failed read; want nothing", conn.written.String(), logs.String())
	}
	// Without a failed read, the same answer is the JSON error, logged.
	conn = &recordConn{}
	c = &rawErrorConn{Conn: conn, l: l}
	c.Write([]byte(raw))
	if !strings.Contains(conn.written.String(), `"code":"invalid"`) || !strings.Contains(logs.String(), "http.parse") {
		t.Fatalf("wrote %q and logged %q; want the JSON error, logged", conn.written.String(), logs.String())
	}
}

// recordConn fails its reads with readErr and records its writes.
type recordConn struct {
	net.Conn
	readErr error
	written bytes.Buffer
}

func (c *recordConn) Read([]byte) (int, error)    { return 0, c.readErr }
func (c *recordConn) Write(p []byte) (int, error) { return c.written.Write(p) }
func (c *recordConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 51234}
}

// TestConnLimitRefusing: past the limit, at most maxRefusing connections
// are answered at once; the next are closed unanswered, and every place
// given back is free again.
func TestConnLimitRefusing(t *testing.T) {
	l := connLimit{max: 1}
	if over, ok := l.admit(); over || !ok {
		t.Fatalf("the first: over %v, ok %v", over, ok)
	}
	for i := range maxRefusing {
		if over, ok := l.admit(); !over || !ok {
			t.Fatalf("refusal %d: over %v, ok %v", i, over, ok)
		}
	}
	if over, ok := l.admit(); !over || ok {
		t.Fatalf("past the refusals: over %v, ok %v; want closed", over, ok)
	}
	for range maxRefusing {
		l.release(true)
	}
	l.release(false)
	if l.open.Load() != 0 || l.refusing.Load() != 0 {
		t.Fatalf("after every release: open %d, refusing %d", l.open.Load(), l.refusing.Load())
	}
}
