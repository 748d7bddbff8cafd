package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// bodyRetryAfter is the wait a PUT shed for its body's memory is told:
// bodies in flight are written within a commit or two.
const bodyRetryAfter = time.Second

// admitBody charges a document write's body (of at most limit bytes) to
// Options.Bodies before it is read, twice (the body read and the copy the
// store stages for its commit): its Content-Length, or limit when it has
// none or is compressed. Outcomes: a release to call once the write is done,
// or a 503 exhausted with Retry-After.
func (s *Server) admitBody(r *http.Request, op string, limit int64) (release func(), err error) {
	b := s.bodies
	if b == nil {
		return func() {}, nil
	}
	if r.ContentLength == 0 || r.ContentLength > limit {
		return func() {}, nil // refused when read (400, 413), holding nothing
	}
	size := limit // none said (chunked), or compressed: at most this
	if coding := r.Header.Get("Content-Encoding"); r.ContentLength > 0 && (coding == "" || strings.EqualFold(coding, "identity")) {
		size = r.ContentLength
	}
	charge := 2 * size
	if !b.Take(charge) {
		if info := reqctx.From(r.Context()); info != nil {
			info.Shed = true // the node's answer under load, logged as the limiter's are
		}
		return nil, fault.WithRetryAfter(fault.New(fault.Exhausted, fault.Context{Op: op, Tenant: TenantOf(r)},
			fmt.Sprintf("server busy: the documents of the requests in flight hold the memory the node keeps for them (%d MiB of its --memory-limit); retry", b.Limit()>>20)),
			bodyRetryAfter)
	}
	return func() { b.Give(charge) }, nil
}
