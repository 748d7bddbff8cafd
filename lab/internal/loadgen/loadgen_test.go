package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counter is a test server that answers GETs 200, except every fifth
// request, which gets 500, and records what it saw.
type counter struct {
	t        *testing.T
	size     int
	requests atomic.Int64
	fails    atomic.Int64
	mu       sync.Mutex // guards following
	puts     map[string]int
	badPuts  int
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := c.requests.Add(1)
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method == http.MethodPut {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.puts[r.URL.Path]++
		if !bytes.Equal(body, Body(c.size)) || r.Header.Get("Content-Type") != "application/json" {
			c.badPuts++
		}
		c.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		return
	}
	if n%5 == 0 {
		c.fails.Add(1)
		http.Error(w, "every fifth", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(Body(c.size))
}

func newCounter(t *testing.T, size int) (*counter, *httptest.Server) {
	c := &counter{t: t, size: size, puts: map[string]int{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv
}

func TestRunCounts(t *testing.T) {
	for _, client := range []Client{ClientRaw, ClientHTTP} {
		t.Run(string(client), func(t *testing.T) {
			c, srv := newCounter(t, 64)
			const conns = 4
			res, err := Run(context.Background(), Config{URL: srv.URL, Token: "tok", Op: OpGet, Conns: conns,
				Duration: 200 * time.Millisecond, Size: 64, Keys: 10, Client: client})
			if err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			seeded := len(c.puts)
			c.mu.Unlock()
			if seeded != 10 {
				t.Errorf("seeded %d keys, want 10", seeded)
			}
			gets := c.requests.Load() - 10
			// Each worker's last request may end after the window and
			// not be counted; every other one must be.
			if got := int64(res.Responses()); got > gets || got < gets-conns || got == 0 {
				t.Errorf("Responses = %d, want %d (the server's count) less at most %d", got, gets, conns)
			}
			if got := res.Status[200] + res.Status[500]; got != res.Responses() {
				t.Errorf("200s + 500s = %d, want Responses = %d (statuses %v)", got, res.Responses(), res.Status)
			}
			if got, want := int64(res.Status[500]), c.fails.Load(); got > want || got < want-conns {
				t.Errorf("500s = %d, want %d (the server's count) less at most %d", got, want, conns)
			}
			if got, want := res.Failed(), res.Status[500]; got != want {
				t.Errorf("Failed = %d, want %d (the 500s)", got, want)
			}
			if res.Errors != 0 || res.FirstErr != nil {
				t.Errorf("Errors = %d (%v), want 0", res.Errors, res.FirstErr)
			}
			if res.Rate() <= 0 || res.Latency.Quantile(0.5) <= 0 {
				t.Errorf("Rate = %v, p50 = %v, want both positive", res.Rate(), res.Latency.Quantile(0.5))
			}
		})
	}
}

func TestPutsAreUniqueAndWhole(t *testing.T) {
	for _, client := range []Client{ClientRaw, ClientHTTP} {
		t.Run(string(client), func(t *testing.T) {
			c, srv := newCounter(t, 100)
			res, err := Run(context.Background(), Config{URL: srv.URL, Token: "tok", Op: OpPut, Conns: 3,
				Duration: 100 * time.Millisecond, Size: 100, Client: client})
			if err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			for path, n := range c.puts {
				if n > 1 {
					t.Errorf("%s was PUT %d times, want once", path, n)
				}
			}
			if c.badPuts > 0 {
				t.Errorf("%d PUTs had a body other than Body(100) or no JSON Content-Type", c.badPuts)
			}
			if res.Status[201] == 0 || res.Status[201] > uint64(len(c.puts)) {
				t.Errorf("201s = %d, want between 1 and %d (the server's count)", res.Status[201], len(c.puts))
			}
		})
	}
}

// TestMixedGetRatioZero: a get ratio of 0 in a mixed run means what it
// says, every request an overwrite, not the CLI's default.
func TestMixedGetRatioZero(t *testing.T) {
	c, srv := newCounter(t, 64)
	res, err := Run(context.Background(), Config{URL: srv.URL, Token: "tok", Op: OpMixed, Conns: 2,
		Duration: 100 * time.Millisecond, Size: 64, Keys: 5, GetRatio: 0})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	puts := 0
	for _, n := range c.puts {
		puts += n
	}
	if gets := c.requests.Load() - int64(puts); gets != 0 || res.Status[201] == 0 {
		t.Errorf("%d GETs and %d answered PUTs (statuses %v), want only PUTs", gets, res.Status[201], res.Status)
	}
}

// TestConnectionErrors: a server that drops every third connection's
// request without answering; the generator counts errors and redials.
func TestConnectionErrors(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Op: OpGet, NoSeed: true, Conns: 2,
		Duration: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.FirstErr == nil {
		t.Errorf("Errors = %d, FirstErr = %v, want some", res.Errors, res.FirstErr)
	}
	if res.Status[200] == 0 {
		t.Errorf("no 200s after redialling: %v", res.Status)
	}
	if got, want := res.Failed(), res.Errors; got != want {
		t.Errorf("Failed = %d, want %d (the connection errors)", got, want)
	}
}

// TestRawFraming: the raw client finds the end of chunked, empty and
// Content-Length bodies and honours Connection: close.
func TestRawFraming(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 4 {
		case 0: // chunked: flushed before the end
			w.Write([]byte(strings.Repeat("a", 5000)))
			w.(http.Flusher).Flush()
			w.Write([]byte("tail"))
		case 1:
			w.WriteHeader(http.StatusNotModified)
		case 2:
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Op: OpGet, NoSeed: true, Conns: 1,
		Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 {
		t.Fatalf("Errors = %d (first: %v), want 0", res.Errors, res.FirstErr)
	}
	for _, code := range []int{200, 204, 304} {
		if res.Status[code] == 0 {
			t.Errorf("no %d responses: %v", code, res.Status)
		}
	}
}

// TestRunStopsWhenCancelled: cancelling interrupts workers blocked on a
// server that never answers.
func TestRunStopsWhenCancelled(t *testing.T) {
	for _, client := range []Client{ClientRaw, ClientHTTP} {
		t.Run(string(client), func(t *testing.T) { testCancel(t, client) })
	}
}

func testCancel(t *testing.T, client Client) {
	block := make(chan struct{})
	arrived := make(chan struct{}, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-block
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Config{URL: srv.URL, Op: OpGet, NoSeed: true, Conns: 2, Duration: time.Hour, Client: client})
		done <- err
	}()
	<-arrived // both workers wait for a response
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v, want context.Canceled", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{URL: "http://127.0.0.1:1", Op: "delete"},
		{URL: "https://127.0.0.1:1", Op: OpGet},
		{URL: "127.0.0.1:1", Op: OpGet},
		{URL: "http://127.0.0.1:1", Op: OpPut, Size: 5},
		{URL: "http://127.0.0.1:1", Op: OpMixed, GetRatio: 2},
		{URL: "http://127.0.0.1:1", Op: OpGet, Client: "curl"},
	} {
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("Run(%+v) = %v, want ErrConfig", c, err)
		}
	}
}

func TestSeedFailure(t *testing.T) {
	_, srv := newCounter(t, 64)
	_, err := Run(context.Background(), Config{URL: srv.URL, Token: "wrong", Op: OpGet, Keys: 3, Duration: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Run with a bad token = %v, want a seed error naming 401", err)
	}
}

func TestBodyAndBare(t *testing.T) {
	for _, size := range []int{minSize, 11, 200, 4096} {
		if got := len(Body(size)); got != size {
			t.Errorf("len(Body(%d)) = %d", size, got)
		}
	}
	srv := httptest.NewServer(Bare(200))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/tenants/demo/docs/anything")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, Body(200)) {
		t.Errorf("bare GET body = %q, want Body(200)", body)
	}
	for name, want := range map[string]string{"Content-Type": "application/json", "Etag": BareETag, "Content-Length": "200"} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("bare GET %s = %q, want %q", name, got, want)
		}
	}
	resp, err = http.DefaultClient.Do(must(http.NewRequest(http.MethodPut, srv.URL+"/x", bytes.NewReader(Body(50)))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("bare PUT = %d, want 201", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
