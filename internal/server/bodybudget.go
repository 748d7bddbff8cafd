package server

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// bodyBudget bounds the memory the document bodies of requests in flight
// hold (Options.BodyBudget): each PUT charges twice its body's size, the
// body read and the copy the store stages for its commit, from before it
// reads the body until its write is done. Counting requests alone
// (--max-in-flight) is blind to their size: a few dozen PUTs of 1 MiB
// documents take more than a small node's heap, and the node would be
// killed for its memory where it should shed them.
type bodyBudget struct {
	limit int64
	used  atomic.Int64
}

func newBodyBudget(limit int64) *bodyBudget {
	if limit <= 0 {
		return nil
	}
	return &bodyBudget{limit: limit}
}

// take charges n bytes, or reports false when that would go over the
// limit. One request is admitted whatever its size while nothing else is
// charged, so a limit below a body's charge slows writes, never stops them.
func (b *bodyBudget) take(n int64) bool {
	if now := b.used.Add(n); now > b.limit && now != n {
		b.used.Add(-n)
		return false
	}
	return true
}

// bodyRetryAfter is the wait a PUT shed for its body's memory is told:
// bodies in flight are written within a commit or two.
const bodyRetryAfter = time.Second

// admitBody charges a document write's body to the budget before it is
// read: its Content-Length, or the most a body may be when it has none or
// is compressed. Outcomes: a release to call once the write is done, or a
// 503 exhausted with Retry-After.
func (s *Server) admitBody(r *http.Request) (release func(), err error) {
	b := s.bodies
	if b == nil {
		return func() {}, nil
	}
	size := s.maxBody
	if r.ContentLength > 0 && r.ContentLength < size && r.Header.Get("Content-Encoding") == "" {
		size = r.ContentLength
	}
	charge := 2 * size
	if !b.take(charge) {
		if info := reqctx.From(r.Context()); info != nil {
			info.Shed = true // the node's answer under load, logged as the limiter's are
		}
		return nil, fault.WithRetryAfter(fault.New(fault.Exhausted, fault.Context{Op: "doc.put", Tenant: TenantOf(r)},
			fmt.Sprintf("server busy: the document bodies being written hold the memory the node keeps for them (%d MiB of its --memory-limit); retry", b.limit>>20)),
			bodyRetryAfter)
	}
	return func() { b.used.Add(-charge) }, nil
}
