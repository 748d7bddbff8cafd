package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/ingest/bulk"
	"github.com/cairnstore/cairn/internal/store"
)

// gatedBody is a request body whose first Read announces that the stream
// was admitted (the handler reads only after taking a slot) and then waits
// for release.
type gatedBody struct {
	admitted chan struct{}
	release  <-chan struct{}
	once     sync.Once
}

func (g *gatedBody) Read(p []byte) (int, error) {
	g.once.Do(func() { close(g.admitted) })
	<-g.release
	return 0, io.EOF
}

func (g *gatedBody) Close() error { return nil }

// TestIngestTenantShare: streams one tenant holds, however slow, leave
// the others room. With the default four streams, a tenant gets two; its
// third gets 429 at once, and another tenant can still ingest.
func TestIngestTenantShare(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := newTestIngestHandler(t, st, IngestLimits{}, nil)
	release := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release)
	admitted, refused := 0, 0
	for range DefaultIngestStreams {
		g := &gatedBody{admitted: make(chan struct{}), release: release}
		done := make(chan int, 1)
		wg.Go(func() {
			w, _ := h.serve(t, "acme", g)
			done <- w.Code
		})
		select {
		case <-g.admitted:
			admitted++
		case code := <-done:
			if code != http.StatusTooManyRequests {
				t.Errorf("acme stream refused with %d, want 429", code)
			}
			refused++
		}
	}
	if admitted != 2 || refused != 2 {
		t.Fatalf("acme: %d streams admitted, %d refused; want 2 and 2", admitted, refused)
	}
	w, r := h.serve(t, "other", io.NopCloser(strings.NewReader(`{"id":"o1"}`+"\n")))
	if w.Code != http.StatusOK || r.Stats.Accepted != 1 {
		t.Fatalf("other tenant while acme holds its share: status %d, reply %+v", w.Code, r)
	}
}

func TestIngestSlots(t *testing.T) {
	s := newIngestSlots(IngestLimits{Streams: 3, TenantStreams: 2})
	a1, err1 := s.acquire("a")
	_, err2 := s.acquire("a")
	_, err3 := s.acquire("a")
	_, err4 := s.acquire("b")
	_, err5 := s.acquire("c")
	if err1 != nil || err2 != nil || err4 != nil {
		t.Fatalf("within the limits: %v, %v, %v", err1, err2, err4)
	}
	if err3 == nil || !strings.Contains(err3.Error(), "its share") {
		t.Errorf("a's third stream: %v, want its share refused", err3)
	}
	if err5 == nil || !strings.Contains(err5.Error(), "3 ingest streams are in progress") {
		t.Errorf("c with the node full: %v, want refused", err5)
	}
	a1()
	a1() // a second release is harmless
	if _, err := s.acquire("c"); err != nil {
		t.Errorf("c after a released one: %v", err)
	}
	if _, err := s.acquire("d"); err == nil {
		t.Errorf("d admitted past the node's limit after a double release")
	}
}

// fakeClock is the rate limit's clock; only the test's bodies move it.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// step is one Read of a scripted body: the client keeps the reader
// waiting for wait, then sends data (or fails with err).
type step struct {
	wait time.Duration
	data string
	err  error
}

// scriptedBody plays steps, one per Read, moving the clock.
type scriptedBody struct {
	clock *fakeClock
	steps []step
	onErr func() // called before a step's error is returned
}

func (b *scriptedBody) Read(p []byte) (int, error) {
	if len(b.steps) == 0 {
		return 0, io.EOF
	}
	s := b.steps[0]
	b.steps = b.steps[1:]
	b.clock.advance(s.wait)
	if s.err != nil {
		if b.onErr != nil {
			b.onErr()
		}
		return 0, s.err
	}
	n := copy(p, s.data)
	if n < len(s.data) { // the rest arrives at once
		b.steps = append([]step{{data: s.data[n:]}}, b.steps...)
	}
	return n, nil
}

func (b *scriptedBody) Close() error { return nil }

// TestIngestTooSlow: a stream that trickles (a line every 20 s, against a
// minimum of 500 bytes/s) is ended with 408 too_slow and the normal reply:
// what arrived in time is durable and named so, the slow line is not
// stored, and the slot is free again.
func TestIngestTooSlow(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	h := newTestIngestHandler(t, st, IngestLimits{Streams: 1}, clock.now)
	lines := []string{`{"id":"a"}` + "\n", `{"id":"b"}` + "\n", `{"id":"c"}` + "\n"}
	body := &scriptedBody{clock: clock, steps: []step{
		{data: lines[0]}, {wait: time.Second, data: lines[1]}, {data: lines[2]},
		{wait: 20 * time.Second, data: `{"id":"slow"}` + "\n"},
		{data: `{"id":"never"}` + "\n"},
	}}
	w, r := h.serve(t, "acme", body)
	if w.Code != http.StatusRequestTimeout || r.Complete || r.Error == nil || r.Error.Code != "too_slow" {
		t.Fatalf("status %d, reply %+v %+v", w.Code, r, r.Error)
	}
	durable := int64(len(strings.Join(lines, "")) - 1) // through the last record, without its newline
	if r.LastDurableLine != 3 || r.ProcessedBytes != durable || r.Stats.Accepted != 3 {
		t.Errorf("reply %+v: want lines 1-3 durable, processed_bytes %d", r, durable)
	}
	for _, want := range []string{"through line 3 durable", "too slowly", "500 bytes/s"} {
		if !strings.Contains(r.Error.Message, want) {
			t.Errorf("message %q does not say %q", r.Error.Message, want)
		}
	}
	for _, key := range []string{"a", "b", "c"} {
		if _, err := st.Get(context.Background(), "acme", key); err != nil {
			t.Errorf("Get(%s), reported durable: %v", key, err)
		}
	}
	for _, key := range []string{"slow", "never"} {
		if _, err := st.Get(context.Background(), "acme", key); err == nil {
			t.Errorf("%s was stored after the stream was ended", key)
		}
	}
	if w, _ := h.serve(t, "acme", io.NopCloser(strings.NewReader(lines[0]))); w.Code != http.StatusOK {
		t.Errorf("next stream after the slow one: status %d; its slot was not freed", w.Code)
	}
}

// TestPacedBody: the minimum rate is judged over the time spent waiting for
// the client, a window at a time; a stream that finishes is never cut.
func TestPacedBody(t *testing.T) {
	for _, c := range []struct {
		name    string
		minRate int64
		steps   []step
		slow    bool
	}{
		{"fast", 500, []step{{data: strings.Repeat("x", 10)}, {wait: 10 * time.Second, data: strings.Repeat("x", 5000)}}, false},
		{"burst then trickle", 500, []step{{wait: time.Second, data: strings.Repeat("x", 20000)}, {wait: 20 * time.Second, data: "x"}, {wait: 20 * time.Second, data: "x"}}, true},
		{"trickle", 500, []step{{wait: 9 * time.Second, data: "x"}, {wait: 9 * time.Second, data: "x"}}, true},
		{"slow end of stream", 500, []step{{data: "x"}, {wait: 30 * time.Second, err: io.EOF}}, false},
		{"no minimum", -1, []step{{wait: time.Hour, data: "x"}, {wait: time.Hour, data: "x"}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := &fakeClock{}
			b := &pacedBody{r: &scriptedBody{clock: clock, steps: c.steps}, now: clock.now, minRate: c.minRate, window: 10 * time.Second}
			var err error
			for p := make([]byte, 64<<10); err == nil; { // reads as large as Process's
				_, err = b.Read(p)
			}
			if errors.Is(err, io.EOF) {
				err = nil
			}
			var slow *tooSlowError
			if errors.As(err, &slow) != c.slow || (b.slow != nil) != c.slow {
				t.Fatalf("err %v, slow %v; want slow %v", err, b.slow, c.slow)
			}
		})
	}
}

// timeoutError is what a read past the connection's deadline returns: a
// net.Error that names the socket addresses.
type timeoutError struct{}

func (timeoutError) Error() string   { return "read tcp 127.0.0.1:7070->127.0.0.1:51234: i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// TestIngestStalledBody: a body that stops arriving is answered as PUT
// answers it, 408 timeout, even though net/http cancels the request's
// context as the read fails (so a batch in the store at that moment is
// given up as "not written"); the reply says what is durable and names no
// socket address. It runs several times: whether the cancellation finds a
// batch in the store depends on scheduling, and either way the answer must
// be the same.
func TestIngestStalledBody(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &fakeClock{}
	h := newTestIngestHandler(t, st, IngestLimits{}, clock.now)
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		body := &scriptedBody{clock: clock, onErr: cancel, steps: []step{
			{data: `{"id":"a"}` + "\n"}, {err: timeoutError{}},
		}}
		w, r := h.serveCtx(t, ctx, "acme", body)
		cancel()
		if w.Code != http.StatusRequestTimeout || r.Complete || r.Error == nil || r.Error.Code != "timeout" {
			t.Fatalf("status %d, reply %s", w.Code, w.Body)
		}
		if msg := r.Error.Message; strings.Contains(msg, "127.0.0.1") || !strings.Contains(msg, "stopped arriving") || strings.Contains(msg, "nothing was stored") ||
			!strings.Contains(msg, "durable") {
			t.Fatalf("message %q: want what stopped and what is durable, and no address", msg)
		}
	}
	// The error as logged says what is durable, never that nothing was.
	run := &ingestRun{tenant: "acme", body: &pacedBody{err: timeoutError{}}, load: &bulk.Loader{LastLine: 7, DurableEnd: 80}}
	if err := run.classify(context.Background(), timeoutError{}); strings.Contains(err.Error(), "nothing was stored") ||
		!strings.Contains(err.Error(), "through line 7 durable") {
		t.Errorf("logged as %q: want what is durable, and nothing contradicting it", err)
	}
}
