package resp_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnstore/cairn/internal/deadline"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/resp"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/servertest"
)

// TestShedding: past the tenant's rate, commands are answered -TRYAGAIN
// (which go-redis would retry; here retries are off), another tenant is
// not affected, and the metrics count both outcomes by command.
func TestShedding(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.Limits.TenantRate, c.Limits.TenantBurst = 0.001, 3 })
	ctx := context.Background()
	acme := client(t, n, "acme", acmeToken, 3)
	var last error
	for range 5 {
		last = acme.Get(ctx, "k").Err()
	}
	if last == nil || !strings.HasPrefix(last.Error(), "TRYAGAIN") {
		t.Fatalf("GET past the tenant's rate: %v, want TRYAGAIN", last)
	}
	if err := client(t, n, "beta", betaToken, 3).Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("another tenant's GET: %v", err)
	}
	res, err := http.Get("http://" + n.AdminAddr() + "/metrics")
	must(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`cairn_resp_commands_total{command="GET",outcome="ok"} 4`,
		`cairn_resp_commands_total{command="GET",outcome="exhausted"} 2`,
		`cairn_resp_connections 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// serveFront serves a RESP front made with opt on a loopback port until
// the test ends, and returns its address.
func serveFront(t *testing.T, opt resp.Options) string {
	t.Helper()
	s, err := resp.New(opt)
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		must(t, s.Shutdown(context.Background()))
		must(t, <-served)
	})
	return ln.Addr().String()
}

// TestIdleClose: a connection that sends no complete command within the
// idle limit is closed, whether it sends nothing or dribbles a command.
func TestIdleClose(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{})
	must(t, err)
	addr := serveFront(t, resp.Options{Docs: &servertest.Mem{}, Auth: auth, Idle: 100 * time.Millisecond})
	for _, send := range []string{"", "*2\r\n$3\r\nGET\r\n$1"} {
		c, err := net.Dial("tcp", addr)
		must(t, err)
		c.Write([]byte(send))
		c.SetReadDeadline(time.Now().Add(20 * time.Second)) // far beyond the idle limit: only a bug reaches it
		start := time.Now()
		_, err = c.Read(make([]byte, 16))
		c.Close()
		if err != io.EOF {
			t.Fatalf("after sending %q and waiting %v: %v, want the server to close (EOF)", send, time.Since(start), err)
		}
	}
}

// deadlineDocs records the deadline each write's context carries.
type deadlineDocs struct {
	*servertest.Mem
	got chan time.Time
}

func (d deadlineDocs) Put(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (string, bool, error) {
	at, _ := deadline.At(ctx)
	d.got <- at
	return d.Mem.Put(ctx, tenant, key, body, pre)
}

// TestWriteDeadline: a write reaches the documents with the node's request
// deadline, carried as over HTTP, so the store drops it unwritten if it
// cannot take it in time.
func TestWriteDeadline(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	docs := deadlineDocs{Mem: &servertest.Mem{}, got: make(chan time.Time, 1)}
	const timeout = 7 * time.Second
	addr := serveFront(t, resp.Options{Docs: docs, Auth: auth, RequestTimeout: timeout})
	rc := redis.NewClient(&redis.Options{Addr: addr, Username: "acme", Password: acmeToken, MaxRetries: -1})
	defer rc.Close()
	before := time.Now()
	must(t, rc.Set(context.Background(), "k", `{"a":1}`, 0).Err())
	after := time.Now()
	at := <-docs.got
	if at.Before(before.Add(timeout)) || at.After(after.Add(timeout)) {
		t.Fatalf("the write carried deadline %v, want %v after it was sent (between %v and %v)",
			at, timeout, before.Add(timeout), after.Add(timeout))
	}
}

// TestHostileFraming: input that a RESP parser trusting its lengths would
// crash on, spin on, or buffer without bound, sent before AUTH, gets
// Redis's protocol error and a closed connection, and the server goes on
// serving: a bulk length near MaxInt64, a multibulk count near it (the
// client then gone), an inline line past 64 KiB, and a command over the
// limit made of arguments each under it.
func TestHostileFraming(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	addr := serveFront(t, resp.Options{Docs: &servertest.Mem{}, Auth: auth, MaxBodyBytes: 1024})
	over := "*80\r\n" // 80,000 bytes of arguments: over 1024 plus 64 KiB
	for range 80 {
		over += "$1000\r\n" + strings.Repeat("x", 1000) + "\r\n"
	}
	for _, tc := range []struct{ name, send, want string }{
		{"bulk length", "*1\r\n$9223372036854775807\r\n", "-ERR Protocol error: invalid bulk length"},
		{"bulk length over the limit", "*1\r\n$999999999\r\n", "-ERR command larger than"},
		{"multibulk count", "*9223372036854775807\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"inline line", strings.Repeat(" ", 70<<10), "-ERR Protocol error: too big inline request"},
		{"arguments over the limit", over, "-ERR command larger than"},
	} {
		c, err := net.Dial("tcp", addr)
		must(t, err)
		go c.Write([]byte(tc.send)) // the server may close before it has read it all
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		reply, err := io.ReadAll(c)
		c.Close()
		if err != nil || !strings.HasPrefix(string(reply), tc.want) {
			t.Errorf("%s: %q, %v; want %q and the connection closed", tc.name, reply, err, tc.want)
		}
	}
	// Inline commands, blank lines and empty multibulk commands between
	// multibulk ones are served in order, as Redis serves them.
	c, err := net.Dial("tcp", addr)
	must(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "AUTH acme "+acmeToken+"\r\n"+strings.Repeat("\r\n", 40000)+
		"*0\r\nPING\r\n*1\r\n$4\r\nPING\r\nECHO \"\\x7b\\x7d\"\r\nQUIT\r\n")
	must(t, err)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	reply, err := io.ReadAll(c)
	if want := "+OK\r\n+PONG\r\n+PONG\r\n$2\r\n{}\r\n+OK\r\n"; err != nil || string(reply) != want {
		t.Errorf("inline and multibulk mixed: %q, %v; want %q", reply, err, want)
	}
}

// TestQuitAndHelloChangeNothingAfter: the commands pipelined after QUIT are
// not run (its client was told the connection ends, and gets no answer for
// them); a HELLO answered with an error does not authenticate the
// connection, whatever option it failed on.
func TestQuitAndHelloChangeNothingAfter(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	docs := &servertest.Mem{}
	s, err := resp.New(resp.Options{Docs: docs, Auth: auth})
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	exchange := func(send string) string {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		must(t, err)
		defer c.Close()
		_, err = io.WriteString(c, send)
		must(t, err)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err := io.ReadAll(c)
		must(t, err)
		return string(got)
	}
	authCmd := "AUTH acme " + acmeToken + "\r\n"
	// In the multibulk form, which redcon reads as one pipeline.
	pipeline := "*1\r\n$4\r\nQUIT\r\n*3\r\n$3\r\nSET\r\n$2\r\nq6\r\n$2\r\n{}\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"
	if got := exchange(authCmd + pipeline); got != "+OK\r\n+OK\r\n" {
		t.Errorf("AUTH, QUIT, SET, DEL: %q, want the first two answered", got)
	}
	for _, hello := range []string{"HELLO 3 AUTH acme " + acmeToken + " BOGUS", "HELLO 3 AUTH acme " + acmeToken + ` SETNAME "a b"`} {
		got := exchange(hello + "\r\nGET k\r\nQUIT\r\n")
		if !strings.HasPrefix(got, "-ERR") || !strings.Contains(got, "\r\n-NOAUTH") {
			t.Errorf("%s, then GET: %q, want an error, then NOAUTH", hello, got)
		}
	}
	must(t, s.Shutdown(context.Background())) // every connection's goroutine has returned
	must(t, <-served)
	if _, err := docs.Get(context.Background(), "acme", "q6"); err == nil {
		t.Error("the SET pipelined after QUIT was run")
	}
}

// conflictDocs answers every key named "c…" as a document with open
// siblings.
type conflictDocs struct{ *servertest.Mem }

func (d conflictDocs) Get(ctx context.Context, tenant, key string) (server.Doc, error) {
	if strings.HasPrefix(key, "c") {
		return server.Doc{}, fault.New(fault.Conflict, fault.Context{}, "open siblings")
	}
	return d.Mem.Get(ctx, tenant, key)
}

// TestTypeOfConflict: a document with open siblings is of type string, as
// EXISTS counts it, where TYPE answered the conflict error.
func TestTypeOfConflict(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	addr := serveFront(t, resp.Options{Docs: conflictDocs{&servertest.Mem{}}, Auth: auth})
	rc := redis.NewClient(&redis.Options{Addr: addr, Username: "acme", Password: acmeToken, MaxRetries: -1})
	defer rc.Close()
	ctx := context.Background()
	if got, err := rc.Type(ctx, "conflicted").Result(); err != nil || got != "string" {
		t.Errorf("TYPE of a document with siblings: %q, %v; want string", got, err)
	}
	if got, err := rc.Exists(ctx, "conflicted").Result(); err != nil || got != 1 {
		t.Errorf("EXISTS of a document with siblings: %d, %v; want 1", got, err)
	}
	if got, err := rc.Type(ctx, "absent").Result(); err != nil || got != "none" {
		t.Errorf("TYPE of an absent key: %q, %v; want none", got, err)
	}
}
