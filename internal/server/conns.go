package server

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/logevery"
)

// DefaultMaxConns is Options.MaxConns' default: as many connections as the
// RESP front takes (Redis's maxclients).
const DefaultMaxConns = 10000

// maxRefusing bounds the connections past MaxConns being answered at once.
// Each is served by net/http as any other, to read one request and answer
// it 503 under the same timeouts and TLS; past this many more, a new
// connection is closed as soon as it is accepted, so a flood of connections
// that send nothing costs at most this many goroutines beyond the limit.
const maxRefusing = 64

// connLimit counts a server's open connections across its listeners.
type connLimit struct {
	max      int64
	open     atomic.Int64
	refusing atomic.Int64
	refused  atomic.Int64 // connections past max, answered 503 or closed, since start
	warn     logevery.Limiter
}

type overConnKey struct{}

// admit counts a newly accepted connection: over reports that it is past
// the limit and is to be answered 503; ok is false when even that is past
// its bound and the connection is to be closed unanswered. A connection
// that is not refused is released by release, once.
func (l *connLimit) admit() (over, ok bool) {
	if l.open.Add(1) <= l.max {
		return false, true
	}
	l.refused.Add(1)
	if l.refusing.Add(1) <= maxRefusing {
		return true, true
	}
	l.refusing.Add(-1)
	l.open.Add(-1)
	return true, false
}

func (l *connLimit) release(over bool) {
	if over {
		l.refusing.Add(-1)
	}
	l.open.Add(-1)
}

// OpenConns returns the API connections open now, counted by the listener
// [Server.Serve] wraps (cairn_http_connections).
func (s *Server) OpenConns() int64 { return s.conns.open.Load() }

// RefusedConns returns how many connections came past --max-conns since
// the server started, each answered 503 or closed (cairn_shed_total).
func (s *Server) RefusedConns() int64 { return s.conns.refused.Load() }

// setMax sets the limit (0: DefaultMaxConns).
func (l *connLimit) setMax(n int) {
	l.max, l.warn.Period = int64(or(n, DefaultMaxConns)), 10*time.Second
}

// connContext marks the requests of a connection past the limit.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if rc, ok := c.(*rawErrorConn); ok && rc.over {
		return context.WithValue(ctx, overConnKey{}, true)
	}
	return ctx
}

// refuseOverLimit answers a request on a connection past the limit, and
// reports whether it did.
func (s *Server) refuseOverLimit(x *exchange, r *http.Request) bool {
	if s.conns.refusing.Load() == 0 {
		return false // no connection is past the limit: no context to search
	}
	if over, _ := r.Context().Value(overConnKey{}).(bool); !over {
		return false
	}
	s.warnOverLimit()
	x.info.Shed = true // the node's own answer under load, logged at Info
	x.Header().Set("Connection", "close")
	s.writeError(x, r, fault.WithRetryAfter(fault.New(fault.Exhausted, fault.Context{Op: "http.accept"},
		"too many connections: the node serves at most "+strconv.FormatInt(s.conns.max, 10)+
			" HTTP connections at once (--max-conns); retry, or reuse the connections the client has open"), time.Second))
	return true
}

func (s *Server) warnOverLimit() {
	if ok, suppressed := s.conns.warn.Allow("", s.now()); ok {
		s.log.Warn("HTTP connections at the limit: refusing new ones", "max_conns", s.conns.max,
			"open", s.conns.open.Load(), "suppressed", suppressed)
	}
}
