package resp

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/internal/logevery"
)

// limitListener hands out limitConns, at most maxClients at once.
type limitListener struct {
	net.Listener
	max          int64
	writeTimeout time.Duration
	idle         time.Duration
	authTimeout  time.Duration
	maxClients   int64
	clients      atomic.Int64  // connections handed out and not yet closed
	refused      *atomic.Int64 // the server's count of connections refused past maxClients
	log          *slog.Logger
	every        logevery.Limiter
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.clients.Add(1) > l.maxClients {
			l.clients.Add(-1)
			l.refuse(c)
			continue
		}
		return &limitConn{Conn: c, l: l, f: framer{max: int(l.max)}, writeTimeout: l.writeTimeout, idle: l.idle,
			idleSlack: min(time.Second, l.idle/4), authTimeout: l.authTimeout, now: time.Now()}, nil
	}
}

// refuse answers a connection past maxClients as Redis does, and closes it.
// The write is bounded: a client that does not read must not hold the
// accept loop.
func (l *limitListener) refuse(c net.Conn) {
	l.refused.Add(1)
	if ok, suppressed := l.every.Allow("maxclients", time.Now()); ok && l.log != nil {
		l.log.Warn("resp connection refused: max number of clients reached", "max_clients", l.maxClients,
			"remote", c.RemoteAddr().String(), "suppressed", suppressed)
	}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte("-ERR max number of clients reached\r\n"))
	c.Close()
}

// errPlainToTLS answers a client that sent plain RESP to a port serving
// TLS.
const errPlainToTLS = "-ERR this port serves RESP over TLS: connect with TLS (redis-cli --tls, with --cacert for a private CA)\r\n"

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
	l            *limitListener
	closed       atomic.Bool
	f            framer
	readErr      error // a read's error, returned once what it read is handed on
	writeTimeout time.Duration
	// now is the time the last command began (handle sets it), or the
	// connection's accept before the first; the write and read deadlines
	// are moved from it at most once a second (or a quarter of the idle
	// limit), as setting one is a poller call per command otherwise.
	now             time.Time
	idle, idleSlack time.Duration
	// authTimeout bounds the time before the connection signs in, from
	// its accept or from the command that signed it out (preAuth: that
	// deadline is set).
	authTimeout time.Duration
	preAuth     bool
	// The times the write and read deadlines count from; zero before the
	// first is set.
	writeFrom, readFrom time.Time
}

// Read reads what next returns.
func (c *limitConn) Read(p []byte) (int, error) {
	out, err := c.next()
	if err != nil {
		return 0, err
	}
	n := copy(p, out)
	c.f.take(n)
	return n, nil
}

// next returns whole commands, framed and not yet handed on (the caller
// hands on what it takes of them with c.f.take), reading the connection
// until there are some; or the error that ends the connection, once what
// came before it has been handed on. What it returns is the framer's
// buffer: valid until the next call.
func (c *limitConn) next() ([]byte, error) {
	for {
		out := c.f.pending()
		if len(out) == 0 {
			c.f.frame() // what it stopped at to hand on what came before
			out = c.f.pending()
		}
		if len(out) > 0 {
			return out, nil
		}
		if c.readErr != nil {
			return nil, c.readErr
		}
		if c.f.err != nil {
			return nil, c.refuse(c.f.err)
		}
		c.moveReadDeadline()
		buf := c.f.space()
		n, err := c.Conn.Read(buf)
		c.f.buf = c.f.buf[:len(c.f.buf)+n]
		if n > 0 {
			c.f.frame()
		}
		if ne, ok := err.(net.Error); c.preAuth && ok && ne.Timeout() {
			c.last("-ERR no AUTH within " + c.authTimeout.String() + "; closing the connection\r\n")
		}
		var rhe tls.RecordHeaderError
		if errors.As(err, &rhe) && rhe.Conn != nil {
			// A client speaking plain RESP to the TLS port: told so in
			// plain text, as net/http tells an HTTP client at an HTTPS
			// port, rather than by a connection closed without a word.
			_ = rhe.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = rhe.Conn.Write([]byte(errPlainToTLS))
		}
		c.readErr = err
	}
}

// moveReadDeadline sets the read deadline: AuthTimeout from the accept (or
// the sign-out) while the connection has not signed in, so that commands
// refused -NOAUTH do not extend it; else the idle limit from the last
// command's start, moved at most once per idleSlack.
func (c *limitConn) moveReadDeadline() {
	if !c.f.authed && c.authTimeout > 0 {
		if !c.preAuth {
			c.preAuth, c.readFrom = true, time.Time{}
			_ = c.Conn.SetReadDeadline(c.now.Add(c.authTimeout))
		}
		return
	}
	signedIn := c.preAuth
	c.preAuth = false
	switch {
	case c.idle > 0 && (c.readFrom.IsZero() || c.now.Sub(c.readFrom) > c.idleSlack):
		_ = c.Conn.SetReadDeadline(c.now.Add(c.idle))
		c.readFrom = c.now
	case c.idle <= 0 && signedIn:
		_ = c.Conn.SetReadDeadline(time.Time{}) // no idle limit: the sign-in's deadline goes
	}
}

// refuse answers a framing error, as Redis does, before the connection
// closes: the stream cannot be resynchronised.
func (c *limitConn) refuse(err error) error {
	msg := "-ERR " + err.Error() + "\r\n"
	if err == errTooLarge {
		msg = "-ERR command larger than " + strconv.Itoa(c.f.max) + " bytes (--max-body-bytes plus 64 KiB); closing the connection\r\n"
	}
	c.last(msg)
	return err
}

// last writes the connection's last reply, before it closes, with a write
// deadline of its own: the one Write moves counts from the last command's
// start, which may be longer ago than the write timeout.
func (c *limitConn) last(msg string) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Conn.Write([]byte(msg))
}

// Close closes the connection and gives its place back to the listener.
func (c *limitConn) Close() error {
	if c.closed.CompareAndSwap(false, true) && c.l != nil {
		c.l.clients.Add(-1)
	}
	return c.Conn.Close()
}

func (c *limitConn) Write(p []byte) (int, error) {
	if c.writeTimeout > 0 && (c.writeFrom.IsZero() || c.now.Sub(c.writeFrom) > time.Second) {
		_ = c.Conn.SetWriteDeadline(c.now.Add(c.writeTimeout))
		c.writeFrom = c.now
	}
	return c.Conn.Write(p)
}
