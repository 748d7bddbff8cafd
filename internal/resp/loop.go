package resp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"time"

	"github.com/tidwall/redcon"
)

// The connection loop. redcon's server reads a connection through a
// bufio.Reader into a buffer of its own, parses it again and copies every
// command into a fresh allocation, with a fresh argument slice: behind the
// framer (frame.go), which has already read, bounded and checked every
// command, that is three copies and three allocations per command on the
// node's busiest path. So the server runs its connections itself: each
// command's arguments are slices of the framer's buffer, valid while the
// pipeline they came in runs (handlers copy what they keep: keys and names
// become strings, a SET's value is cloned before the store takes it), and
// the replies are written with redcon's Writer, as redcon writes them.

// rconn is one connection: the redcon.Conn the handlers are given.
type rconn struct {
	lc     *limitConn
	wr     *redcon.Writer
	addr   string
	ctx    any
	cmds   []redcon.Command // the rest of the pipeline being run
	closed bool             // closed by its handler (QUIT)

	// Reused from one pipeline to the next: the commands parsed and
	// their arguments.
	parsed []redcon.Command
	args   [][]byte
}

// keepParsed bounds the commands and arguments whose room a connection
// keeps from one pipeline to the next.
const keepParsed = 1024

var _ redcon.Conn = (*rconn)(nil)

func (c *rconn) RemoteAddr() string { return c.addr }

// Close sends the replies written so far and closes the connection; the
// loop runs nothing more of it.
func (c *rconn) Close() error {
	_ = c.wr.Flush()
	c.closed = true
	return c.lc.Close()
}

func (c *rconn) WriteError(msg string)       { c.wr.WriteError(msg) }
func (c *rconn) WriteString(str string)      { c.wr.WriteString(str) }
func (c *rconn) WriteBulk(bulk []byte)       { c.wr.WriteBulk(bulk) }
func (c *rconn) WriteBulkString(bulk string) { c.wr.WriteBulkString(bulk) }
func (c *rconn) WriteInt(num int)            { c.wr.WriteInt(num) }
func (c *rconn) WriteInt64(num int64)        { c.wr.WriteInt64(num) }
func (c *rconn) WriteUint64(num uint64)      { c.wr.WriteUint64(num) }
func (c *rconn) WriteArray(count int)        { c.wr.WriteArray(count) }
func (c *rconn) WriteNull()                  { c.wr.WriteNull() }
func (c *rconn) WriteRaw(data []byte)        { c.wr.WriteRaw(data) }
func (c *rconn) WriteAny(v any)              { c.wr.WriteAny(v) }
func (c *rconn) WriteBulkFrom(n int64, r io.Reader) {
	c.wr.WriteBulkFrom(n, r)
}
func (c *rconn) Context() any      { return c.ctx }
func (c *rconn) SetContext(v any)  { c.ctx = v }
func (c *rconn) SetReadBuffer(int) {}
func (c *rconn) NetConn() net.Conn { return c.lc }

// Detach is not served: no command hands its connection over.
func (c *rconn) Detach() redcon.DetachedConn { panic("resp: Detach is not supported") }

func (c *rconn) ReadPipeline() []redcon.Command {
	cmds := c.cmds
	c.cmds = nil
	return cmds
}

func (c *rconn) PeekPipeline() []redcon.Command { return c.cmds }

// flush sends the replies c holds: every connection is an rconn (serve).
func flush(c redcon.Conn) error { return c.(*rconn).wr.Flush() }

// serve runs a connection's pipelines until it closes: each read's whole
// commands, one after the other, then their replies in one write.
func (s *Server) serve(c *rconn) {
	var err error
	defer func() {
		c.lc.Close()
		s.forget(c)
		if err == io.EOF {
			err = nil
		}
		s.closed(c, err)
	}()
	for {
		var b []byte
		if b, err = c.lc.next(); err != nil {
			return
		}
		c.parsed, c.args = parseFramed(b, c.parsed[:0], c.args[:0])
		c.lc.f.take(len(b))
		c.cmds = c.parsed
		for len(c.cmds) > 0 {
			cmd := c.cmds[0]
			c.cmds = c.cmds[1:]
			s.handle(c, cmd)
		}
		if c.closed {
			return
		}
		if err = c.wr.Flush(); err != nil {
			return
		}
		if cap(c.parsed) > keepParsed || cap(c.args) > keepParsed {
			c.parsed, c.args = nil, nil
		}
		clear(c.parsed) // no references kept into buffers the framer may drop
		clear(c.args)
	}
}

// parseFramed appends the commands of b, whole multibulk commands as the
// framer hands them on (so well-formed), to cmds; their arguments are
// slices of b, appended to args.
func parseFramed(b []byte, cmds []redcon.Command, args [][]byte) ([]redcon.Command, [][]byte) {
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		n, _ := parseLen(b[1 : nl-1])
		i, first := nl+1, len(args)
		for range n {
			nl = i + bytes.IndexByte(b[i:], '\n')
			size, _ := parseLen(b[i+1 : nl-1])
			end := nl + 1 + size
			args = append(args, b[nl+1:end:end])
			i = end + 2
		}
		cmds = append(cmds, redcon.Command{Raw: b[:i:i], Args: args[first:len(args):len(args)]})
		b = b[i:]
	}
	return cmds, args
}

// acceptLoop accepts connections on ln until it is closed, and closes
// every connection still open when it returns.
func (s *Server) acceptLoop(ln net.Listener) error {
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for c := range s.open {
			c.lc.Close()
		}
		s.open = nil
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.draining.Load() {
				return nil
			}
			// Out of file descriptors, say: wait a little, as net/http
			// does, rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("resp accept failed; retrying", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		lc := nc.(*limitConn)
		c := &rconn{lc: lc, wr: redcon.NewWriter(lc), addr: lc.RemoteAddr().String()}
		s.mu.Lock()
		if s.open == nil { // closing
			s.mu.Unlock()
			lc.Close()
			return nil
		}
		s.open[c] = struct{}{}
		s.mu.Unlock()
		s.accept(c)
		go s.serve(c)
	}
}

func (s *Server) forget(c *rconn) {
	s.mu.Lock()
	delete(s.open, c)
	s.mu.Unlock()
}
