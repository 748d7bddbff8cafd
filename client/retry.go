package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"time"
)

// RetryPolicy bounds retries. Zero fields take the defaults in brackets.
//
// Which requests are retried:
//   - Reads (Get, Head, every page of List) after a transport error (the
//     connection failed or was reset) or an answer of 408, 429, 502, 503 or
//     504. A listing that fails in the middle of a page resumes after the
//     last row it yielded, so no row is yielded twice.
//   - Writes (Put, Delete), conditional or not, only when the server cannot
//     have applied them: the connection could not be established, or the
//     server answered 429. A write that may have reached the handler (a
//     timeout, a reset, a 503) is never repeated, because a repeat could do
//     what the caller did not ask: a create-only Put that succeeded would
//     come back as ErrPreconditionFailed, an unconditional Put could
//     overwrite a newer write made in between. Such errors are returned;
//     [Error.RetryAfter] says when to try again if the caller decides to.
//
// Waits use full jitter: a uniform delay in [0, min(MaxDelay,
// BaseDelay·2^n)], but at least the server's Retry-After. A Retry-After
// longer than MaxRetryAfter, or one that would outlast the context's
// deadline, ends the retries at once.
type RetryPolicy struct {
	// MaxAttempts counts the client's attempts [4]; 1 disables its
	// retries. Beneath it, net/http itself sends a read (GET, HEAD) once
	// more when a kept-alive connection it reused fails before any
	// answer, as it does for every idempotent request; writes it never
	// sends twice.
	MaxAttempts   int
	BaseDelay     time.Duration // [100ms]
	MaxDelay      time.Duration // [2s]
	MaxRetryAfter time.Duration // [30s]
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 4
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 100 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 2 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 30 * time.Second
	}
	return p
}

// do sends cl, retrying as the policy allows, and returns a 2xx response
// (body unread) or the last error: an *Error for a non-2xx answer.
func (c *Client) do(ctx context.Context, cl *call) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		resp, err := c.send(ctx, cl)
		var hint time.Duration
		switch {
		case err != nil:
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return resp, nil
		default:
			apiErr := errorFrom(resp)
			err, hint = apiErr, apiErr.RetryAfter
		}
		if !c.retryable(ctx, err, cl.write) || !c.wait(ctx, attempt, hint) {
			return nil, gaveUp(ctx, err)
		}
	}
}

// gaveUp is the error of a call that stops retrying with err: err itself,
// or, when ctx ended (during a wait between attempts, or the attempt), an
// error that matches ctx's error too, so a caller tells its own
// cancellation or deadline from the server's answer.
func gaveUp(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w (the last attempt: %w)", cerr, err)
}

// retryable says whether err may be retried for a read (write false) or a
// write.
func (c *Client) retryable(ctx context.Context, err error, write bool) bool {
	if ctx.Err() != nil {
		return false
	}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		switch apiErr.Status {
		case http.StatusTooManyRequests:
			return true
		case http.StatusRequestTimeout, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, 0:
			// The server's code decides where it sent one (a 502 may be
			// corruption, which repeating cannot fix); 0 is an error
			// reported inside a listing stream.
			return !write && errors.Is(apiErr, ErrUnavailable)
		}
		return false
	}
	if !write {
		return true // the connection failed; a read is safe to repeat
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// wait sleeps before attempt+1 and reports whether to make it.
func (c *Client) wait(ctx context.Context, attempt int, retryAfter time.Duration) bool {
	p := c.policy
	if attempt >= p.MaxAttempts || retryAfter > p.MaxRetryAfter {
		return false
	}
	ceiling := p.BaseDelay // doubled per attempt up to MaxDelay, never shifted past it (no overflow)
	for i := 1; i < attempt && ceiling < p.MaxDelay; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, p.MaxDelay)
	d := max(time.Duration(c.jit(int64(ceiling)+1)), retryAfter)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return false
	}
	return c.sleep(ctx, d) == nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func randN(n int64) int64 { return rand.Int64N(n) }
