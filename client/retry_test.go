package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// script is a test server that answers request n with steps[n] (the last
// step repeats) and records what it saw.
type script struct {
	mu    sync.Mutex // guards following
	n     int
	seen  []*http.Request
	steps []func(w http.ResponseWriter, r *http.Request)
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := min(s.n, len(s.steps)-1)
	s.n++
	s.seen = append(s.seen, r)
	s.mu.Unlock()
	s.steps[i](w, r)
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func status(code int, hdr ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Header().Set("X-Request-ID", "rid")
		w.WriteHeader(code)
		if code >= 300 {
			fmt.Fprintf(w, `{"error":{"code":%q,"message":"m","request_id":"rid"}}`, codeFor(code))
		} else {
			io.WriteString(w, `{}`)
		}
	}
}

func codeFor(status int) string {
	switch status {
	case 503:
		return "transient"
	case 429:
		return "exhausted"
	case 404:
		return "not_found"
	}
	return "x"
}

// reset closes the connection without answering.
func reset(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }

// coded answers status with cairn's JSON error of the given code.
func coded(code int, errCode string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"error":{"code":%q,"message":"m","request_id":"rid"}}`, errCode)
	}
}

// TestRetryAfterHugeValue: a Retry-After too large for a Duration is capped,
// not wrapped negative (which would have retried at once).
func TestRetryAfterHugeValue(t *testing.T) {
	if d := retryAfter("99999999999999"); d <= 0 || d > 24*time.Hour {
		t.Fatalf("retryAfter(huge) = %v, want a positive capped delay", d)
	}
}

// TestBackoffLargeBase: doubling a large BaseDelay never overflows.
func TestBackoffLargeBase(t *testing.T) {
	c, waits := testClient(t, "http://unused", RetryPolicy{MaxAttempts: 100, BaseDelay: 10 * time.Second, MaxDelay: time.Minute})
	for attempt := 1; attempt < 40; attempt++ {
		c.wait(t.Context(), attempt, 0)
	}
	for i, w := range *waits {
		if w < 0 || w > time.Minute {
			t.Fatalf("wait %d = %v, want within [0, 1m]", i+1, w)
		}
	}
}

// testClient returns a client whose waits are recorded, not slept, and
// whose jitter is the largest possible delay.
func testClient(t *testing.T, url string, p RetryPolicy) (*Client, *[]time.Duration) {
	var waits []time.Duration
	c := New(url, "tok", WithRetry(p))
	c.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}
	c.jit = func(n int64) int64 { return n - 1 }
	return c, &waits
}

func TestRetryRules(t *testing.T) {
	type step = func(http.ResponseWriter, *http.Request)
	cases := []struct {
		name     string
		steps    []step
		write    bool
		attempts int   // requests the server saw
		want     error // nil: success
	}{
		{"read 503 then ok", []step{status(503), status(503), status(200)}, false, 3, nil},
		{"read 429/502/504/408", []step{status(429), status(502), status(504), status(200)}, false, 4, nil},
		{"read gives up", []step{status(503)}, false, 4, ErrUnavailable},
		{"read reset then ok", []step{reset, status(200)}, false, 2, nil},
		{"read 404 not retried", []step{status(404)}, false, 1, ErrNotFound},
		{"read 500 not retried", []step{status(500)}, false, 1, ErrServer},
		{"write 503 not retried", []step{status(503), status(200)}, true, 1, ErrUnavailable},
		{"write reset not retried", []step{reset, status(200)}, true, 1, nil},
		{"write 429 retried", []step{status(429), status(200)}, true, 2, nil},
		{"write 412 not retried", []step{status(412), status(200)}, true, 1, ErrPreconditionFailed},
		{"read of a corrupt copy not retried", []step{coded(502, "corruption"), status(200)}, false, 1, ErrServer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{steps: tc.steps}
			ts := httptest.NewServer(s)
			defer ts.Close()
			c, _ := testClient(t, ts.URL, RetryPolicy{})
			var err error
			if tc.write {
				_, err = c.Put(t.Context(), "t", "k", []byte(`{}`))
			} else {
				_, err = c.Get(t.Context(), "t", "k")
			}
			if got := s.count(); got != tc.attempts {
				t.Errorf("server saw %d attempts, want %d", got, tc.attempts)
			}
			switch {
			case tc.name == "write reset not retried":
				if err == nil {
					t.Error("reset write: no error")
				}
			case tc.want == nil && err != nil:
				t.Errorf("err %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// TestWriteRetriedWhenNeverSent: a refused connection is the one transport
// error a write is retried on.
func TestWriteRetriedWhenNeverSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, waits := testClient(t, "http://"+addr, RetryPolicy{MaxAttempts: 3})
	_, err = c.Put(t.Context(), "t", "k", []byte(`{}`))
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || len(*waits) != 2 {
		t.Errorf("err %v after %d waits; want a dial error after 2", err, len(*waits))
	}
}

func TestBackoff(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){status(503)}}
	ts := httptest.NewServer(s)
	defer ts.Close()
	c, waits := testClient(t, ts.URL, RetryPolicy{MaxAttempts: 6, BaseDelay: 100 * time.Millisecond, MaxDelay: 500 * time.Millisecond})
	c.Get(t.Context(), "t", "k")
	want := []time.Duration{100, 200, 400, 500, 500}
	if len(*waits) != len(want) {
		t.Fatalf("waits %v", *waits)
	}
	for i, w := range want {
		if got := (*waits)[i]; got != w*time.Millisecond {
			t.Errorf("wait %d = %v, want at most %v", i, got, w*time.Millisecond)
		}
	}
	// Full jitter: the low end is zero.
	*waits = nil
	c.jit = func(int64) int64 { return 0 }
	c.Get(t.Context(), "t", "k")
	for _, w := range *waits {
		if w != 0 {
			t.Errorf("jitter floor: wait %v", w)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){status(503, "Retry-After", "3"), status(200)}}
	ts := httptest.NewServer(s)
	defer ts.Close()
	c, waits := testClient(t, ts.URL, RetryPolicy{})
	if _, err := c.Get(t.Context(), "t", "k"); err != nil {
		t.Fatal(err)
	}
	if len(*waits) != 1 || (*waits)[0] != 3*time.Second {
		t.Errorf("waits %v, want [3s]", *waits)
	}

	// Too long a Retry-After: no retry, the hint is in the error.
	s = &script{steps: []func(http.ResponseWriter, *http.Request){status(503, "Retry-After", "120")}}
	ts2 := httptest.NewServer(s)
	defer ts2.Close()
	c, waits = testClient(t, ts2.URL, RetryPolicy{})
	_, err := c.Get(t.Context(), "t", "k")
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.RetryAfter != 120*time.Second || len(*waits) != 0 || s.count() != 1 {
		t.Errorf("err %v waits %v attempts %d", err, *waits, s.count())
	}

	// A wait past the context's deadline is not started.
	s = &script{steps: []func(http.ResponseWriter, *http.Request){status(503, "Retry-After", "5")}}
	ts3 := httptest.NewServer(s)
	defer ts3.Close()
	c, waits = testClient(t, ts3.URL, RetryPolicy{})
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := c.Get(ctx, "t", "k"); !errors.Is(err, ErrUnavailable) || len(*waits) != 0 {
		t.Errorf("err %v waits %v", err, *waits)
	}
}

// TestCanceledContextStopsRetries: the real sleep returns when ctx ends.
func TestCanceledContextStopsRetries(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){status(503)}}
	ts := httptest.NewServer(s)
	defer ts.Close()
	c := New(ts.URL, "tok", WithRetry(RetryPolicy{BaseDelay: time.Hour, MaxDelay: time.Hour}))
	c.jit = func(n int64) int64 { return n - 1 }
	ctx, cancel := context.WithCancel(t.Context())
	var calls atomic.Int32
	c.hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if calls.Add(1) == 1 {
			defer cancel() // cancel while the client waits for its retry
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	_, err := c.Get(ctx, "t", "k")
	if !errors.Is(err, ErrUnavailable) || calls.Load() != 1 {
		t.Errorf("err %v after %d calls", err, calls.Load())
	}
	// The caller's own cancellation is told from the server's answer.
	var apiErr *Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &apiErr) || apiErr.Status != 503 {
		t.Errorf("err %v: want it to match context.Canceled and carry the 503", err)
	}
}

// TestNegativePageSize: a negative page size is the caller's mistake,
// refused before any request, not taken for the default.
func TestNegativePageSize(t *testing.T) {
	c := New("http://127.0.0.1:1", "tok")
	for _, err := range c.List(t.Context(), "t", PageSize(-5)) {
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "PageSize(-5)") {
			t.Fatalf("PageSize(-5): %v, want ErrInvalid naming it", err)
		}
		return
	}
	t.Fatal("PageSize(-5): the listing yielded nothing")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   error
		code   string
	}{
		{400, `{"error":{"code":"invalid","message":"bad key","request_id":"r"}}`, ErrInvalid, "invalid"},
		{413, `{"error":{"code":"too_large","message":"big","request_id":"r"}}`, ErrTooLarge, "too_large"},
		{401, `{"error":{"code":"unauthorized"}}`, ErrUnauthorized, "unauthorized"},
		{403, `{"error":{"code":"forbidden"}}`, ErrForbidden, "forbidden"},
		{404, `<html>not json</html>`, ErrNotFound, "http_404"},
		{409, `{"error":{"code":"conflict"}}`, ErrConflict, "conflict"},
		{412, `{"error":{"code":"precondition_failed"}}`, ErrPreconditionFailed, "precondition_failed"},
		{304, ``, ErrNotModified, "not_modified"},
		{502, `bad gateway`, ErrUnavailable, "http_502"},
		{501, ``, ErrServer, "http_501"},
		{418, ``, nil, "http_418"},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{"X-Request-Id": {"hdr"}}, Body: io.NopCloser(strings.NewReader(tc.body))}
		e := errorFrom(resp)
		if e.Code != tc.code || e.Status != tc.status || e.Message == "" {
			t.Errorf("%d: %+v", tc.status, e)
		}
		if tc.want != nil && !errors.Is(e, tc.want) {
			t.Errorf("%d: %v is not %v", tc.status, e, tc.want)
		}
		for _, other := range []error{ErrNotFound, ErrInvalid, ErrUnavailable} {
			if other != tc.want && errors.Is(e, other) {
				t.Errorf("%d: also matches %v", tc.status, other)
			}
		}
	}
	if got := retryAfter(time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)); got < 58*time.Second || got > time.Minute {
		t.Errorf("Retry-After date: %v", got)
	}
}
