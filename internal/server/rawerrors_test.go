package server

import (
	"net"
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
