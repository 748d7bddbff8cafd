package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/server"
)

// TestMaxConns: past Options.MaxConns a connection's request is answered
// 503 with the JSON error, Retry-After and Connection: close, and the
// connection is closed; a connection that ends frees its place.
func TestMaxConns(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.MaxConns = 2 })
	addr := e.serve(t)
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, br *bufio.Reader, extra string) *http.Response {
		t.Helper()
		fmt.Fprintf(c, "GET /livez HTTP/1.1\r\nHost: x\r\n%s\r\n", extra)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	c1, r1 := dial()
	c2, r2 := dial()
	for _, c := range []struct {
		c net.Conn
		r *bufio.Reader
	}{{c1, r1}, {c2, r2}} {
		if res := get(c.c, c.r, ""); res.StatusCode != http.StatusOK {
			t.Fatalf("within the limit: %d", res.StatusCode)
		}
	}
	if n := e.srv.OpenConns(); n != 2 {
		t.Errorf("OpenConns = %d, want 2", n)
	}

	c3, r3 := dial()
	fmt.Fprintf(c3, "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(r3, nil)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "1" || !res.Close ||
		body.Error.Code != "exhausted" || !strings.Contains(body.Error.Message, "--max-conns") {
		t.Fatalf("past the limit: %d, Retry-After %q, close %v, %+v", res.StatusCode, res.Header.Get("Retry-After"), res.Close, body.Error)
	}
	if n, err := r3.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the refused connection: %d, %v; want it closed", n, err)
	}
	if !strings.Contains(e.logs.String(), "HTTP connections at the limit") {
		t.Error("no warning logged")
	}
	for _, rec := range e.logs.records(t) {
		if rec["status"] == 503.0 && (rec["level"] != "INFO" || rec["class"] != "exhausted") {
			t.Errorf("the refused request's line: %v; want Info, class exhausted", rec)
		}
	}

	// c1 ends: the server closes it after answering (which frees its
	// place before the client reads the end), and a new one is served.
	get(c1, r1, "Connection: close\r\n")
	if n, err := r1.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after Connection: close: %d, %v", n, err)
	}
	c4, r4 := dial()
	if res := get(c4, r4, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("after a connection ended: %d, want 200", res.StatusCode)
	}
}

// TestRawErrorOnKeptAliveConnection: a request net/http refuses by itself
// gets the JSON error on a connection that already served one, as on a
// new one (net/http ends a read of its own after each request).
func TestRawErrorOnKeptAliveConnection(t *testing.T) {
	e := newEnv(t)
	addr := e.serve(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for i, req := range []string{"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n"} {
		fmt.Fprint(c, req)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: no answer: %v", i+1, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if want := []int{200, 400}[i]; res.StatusCode != want || (i == 1 && !strings.Contains(string(body), `"code":"invalid"`)) {
			t.Fatalf("request %d: %d %s; want %d", i+1, res.StatusCode, body, want)
		}
	}
	// The same two pipelined, in one write: the second is parsed from
	// what net/http buffered, and is still the malformed request it is
	// (400), not a stall (408).
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprint(c2, "GET /livez HTTP/1.1\r\nHost: x\r\n\r\nGET /%zz HTTP/1.1\r\nHost: x\r\n\r\n")
	br2 := bufio.NewReader(c2)
	for i, want := range []int{200, 400} {
		res, err := http.ReadResponse(br2, nil)
		if err != nil {
			t.Fatalf("pipelined request %d: no answer: %v", i+1, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("pipelined request %d: %d %s; want %d", i+1, res.StatusCode, body, want)
		}
	}
}

// TestH2CPreface: HTTP/2's cleartext preface is answered with the JSON 400
// saying HTTP/2 is not served, where it was told its target was not an
// absolute path.
func TestH2CPreface(t *testing.T) {
	e := newEnv(t)
	c, err := net.Dial("tcp", e.serve(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprint(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || !strings.Contains(string(body), "HTTP/2 is not served") {
		t.Fatalf("%d %s; want 400 saying HTTP/2 is not served", res.StatusCode, body)
	}
}
