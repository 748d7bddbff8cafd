package resp

import (
	"errors"
	"net"
	"strconv"
	"time"
)

// errTooLarge ends a connection whose command outgrew the limit.
var errTooLarge = errors.New("resp: command too large")

// limitListener hands out limitConns.
type limitListener struct {
	net.Listener
	max          int64
	writeTimeout time.Duration
	idle         time.Duration
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &limitConn{Conn: c, max: l.max, writeTimeout: l.writeTimeout, idle: l.idle,
		idleSlack: min(time.Second, l.idle/4), now: time.Now()}, nil
}

// limitConn bounds what a client may send ahead of the commands it has
// completed: redcon buffers a partial command whole, however large its
// announced length, so the bound is kept here, below it. It also gives
// every write a deadline, and closes a connection that completes no
// command for the idle limit (a read deadline from the last command's
// start, so a client dribbling a command does not move it).
//
// read and consumed are touched only by the connection's goroutine: redcon
// reads and runs the handler on the same one.
type limitConn struct {
	net.Conn
	max          int64
	writeTimeout time.Duration
	read         int64 // bytes read from the client
	consumed     int64 // bytes of the commands handed to the handler
	// now is the time the last command began (handle sets it), or the
	// connection's accept before the first; the write and read deadlines
	// are moved from it at most once a second (or a quarter of the idle
	// limit), as setting one is a poller call per command otherwise.
	now             time.Time
	idle, idleSlack time.Duration
	// The times the write and read deadlines count from; zero before the
	// first is set.
	writeFrom, readFrom time.Time
}

func (c *limitConn) Read(p []byte) (int, error) {
	if c.read-c.consumed > c.max {
		// The reply goes out before the connection closes, as Redis does
		// for a protocol error; the stream cannot be resynchronised.
		_, _ = c.Conn.Write([]byte("-ERR command larger than " + strconv.FormatInt(c.max, 10) +
			" bytes (--max-body-bytes plus 64 KiB); closing the connection\r\n"))
		return 0, errTooLarge
	}
	if c.idle > 0 && (c.readFrom.IsZero() || c.now.Sub(c.readFrom) > c.idleSlack) {
		_ = c.Conn.SetReadDeadline(c.now.Add(c.idle))
		c.readFrom = c.now
	}
	n, err := c.Conn.Read(p)
	c.read += int64(n)
	return n, err
}

// done records a command of n bytes handed to the handler. An inline
// command is counted in its re-encoded form, which may be longer than
// what was read: consumed never passes read.
func (c *limitConn) done(n int) {
	c.consumed = min(c.consumed+int64(n), c.read)
}

func (c *limitConn) Write(p []byte) (int, error) {
	if c.writeTimeout > 0 && (c.writeFrom.IsZero() || c.now.Sub(c.writeFrom) > time.Second) {
		_ = c.Conn.SetWriteDeadline(c.now.Add(c.writeTimeout))
		c.writeFrom = c.now
	}
	return c.Conn.Write(p)
}
