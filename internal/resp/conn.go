package resp

import (
	"net"
	"strconv"
	"time"
)

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
	return &limitConn{Conn: c, f: framer{max: int(l.max)}, writeTimeout: l.writeTimeout, idle: l.idle,
		idleSlack: min(time.Second, l.idle/4), now: time.Now()}, nil
}

// limitConn is what redcon reads and writes a client through. Its reads
// go through a framer (frame.go), which bounds each command and hands
// redcon whole commands only. It gives every write a deadline, and closes
// a connection that completes no command for the idle limit (a read
// deadline from the last command's start, so a client dribbling a command
// does not move it).
//
// It is used only by the connection's goroutine: redcon reads and runs the
// handler on the same one.
type limitConn struct {
	net.Conn
	f            framer
	readErr      error // a read's error, returned once what it read is handed on
	writeTimeout time.Duration
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
	for {
		out := c.f.pending()
		if len(out) == 0 {
			c.f.frame() // what it stopped at to hand on what came before
			out = c.f.pending()
		}
		if len(out) > 0 {
			n := copy(p, out)
			c.f.take(n)
			return n, nil
		}
		if c.readErr != nil {
			return 0, c.readErr
		}
		if c.f.err != nil {
			return 0, c.refuse(c.f.err)
		}
		if c.idle > 0 && (c.readFrom.IsZero() || c.now.Sub(c.readFrom) > c.idleSlack) {
			_ = c.Conn.SetReadDeadline(c.now.Add(c.idle))
			c.readFrom = c.now
		}
		buf := c.f.space()
		n, err := c.Conn.Read(buf)
		c.f.buf = c.f.buf[:len(c.f.buf)+n]
		if n > 0 {
			c.f.frame()
		}
		c.readErr = err
	}
}

// refuse answers a framing error, as Redis does, before the connection
// closes: the stream cannot be resynchronised.
func (c *limitConn) refuse(err error) error {
	msg := "-ERR " + err.Error() + "\r\n"
	if err == errTooLarge {
		msg = "-ERR command larger than " + strconv.Itoa(c.f.max) + " bytes (--max-body-bytes plus 64 KiB); closing the connection\r\n"
	}
	_, _ = c.Write([]byte(msg))
	return err
}

func (c *limitConn) Write(p []byte) (int, error) {
	if c.writeTimeout > 0 && (c.writeFrom.IsZero() || c.now.Sub(c.writeFrom) > time.Second) {
		_ = c.Conn.SetWriteDeadline(c.now.Add(c.writeTimeout))
		c.writeFrom = c.now
	}
	return c.Conn.Write(p)
}
