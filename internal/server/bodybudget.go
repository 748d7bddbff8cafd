package server

import (
	"io"
	"net/http"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// bodyRetryAfter is the wait a write shed for its body's memory is told:
// bodies in flight are written within a commit or two.
const bodyRetryAfter = time.Second

// bodyCharge charges a document write's body to Options.Bodies as it is
// read, twice each byte (the body read and the copy the store stages for
// its commit), and gives it all back once the write is done (release).
// Charged as it arrives, not as its Content-Length promises, a body that
// trickles in holds what it sent, as its buffer does (readAll): declaring
// large bodies and sending nothing holds nothing of the budget. A nil
// *bodyCharge charges nothing.
type bodyCharge struct {
	b      *resilience.ByteBudget
	r      *http.Request
	op     string
	tenant string
	held   int64
}

// chargeBody returns the charge of r's body, nil without a budget.
func (s *Server) chargeBody(r *http.Request, op string) *bodyCharge {
	if s.bodies == nil {
		return nil
	}
	return &bodyCharge{b: s.bodies, r: r, op: op, tenant: TenantOf(r)}
}

// reader is rd charged as it is read; a read past the budget fails with a
// 503 exhausted (Retry-After), which readEncoded returns as it is.
func (c *bodyCharge) reader(rd io.Reader) io.Reader {
	if c == nil {
		return rd
	}
	return &chargedReader{r: rd, c: c}
}

// release gives back what the body took.
func (c *bodyCharge) release() {
	if c != nil {
		c.b.Give(c.tenant, c.held)
		c.held = 0
	}
}

type chargedReader struct {
	r io.Reader
	c *bodyCharge
}

func (cr *chargedReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	if n > 0 {
		c := cr.c
		if !c.b.Take(c.tenant, 2*int64(n), c.held) {
			return 0, c.refusal()
		}
		c.held += 2 * int64(n)
	}
	return n, err
}

// refusal is the 503 of a body past the budget, logged as the limiter's
// sheds are.
func (c *bodyCharge) refusal() error {
	if info := reqctx.From(c.r.Context()); info != nil {
		info.Shed = true
	}
	return fault.WithRetryAfter(fault.New(fault.Exhausted, fault.Context{Op: c.op, Tenant: c.tenant},
		c.b.Busy("the documents of the requests in flight")+"; retry"),
		bodyRetryAfter)
}
