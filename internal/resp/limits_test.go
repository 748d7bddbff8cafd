package resp_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnstore/cairn/internal/deadline"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/procout"
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
	beta := client(t, n, "beta", betaToken, 3)
	if err := beta.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("another tenant's GET: %v", err)
	}
	// A command on many keys takes one of the rate per key: an MSET of 3
	// is admitted on the burst's second token and owes the rest, so the
	// tenant's next command waits, where it counted as one command. One of
	// more keys than the burst could never be paid for: refused, not
	// TRYAGAIN, and nothing written.
	pairs := func(n int) []any {
		p := make([]any, 0, 2*n)
		for i := range n {
			p = append(p, fmt.Sprintf("m%d", i), "{}")
		}
		return p
	}
	if err := beta.MSet(ctx, pairs(10)...).Err(); err == nil || !strings.Contains(err.Error(), "ERR mset acts on 10 keys, more than one command may: 3,") {
		t.Fatalf("MSET of 10 on a burst of 3: %v, want an error naming the burst", err)
	}
	if err := beta.MSet(ctx, pairs(3)...).Err(); err != nil {
		t.Fatalf("MSET of 3 with 2 of the burst left: %v", err)
	}
	if err := beta.Get(ctx, "k").Err(); err == nil || !strings.HasPrefix(err.Error(), "TRYAGAIN") {
		t.Fatalf("a GET after an MSET of 3 with 2 of a burst of 3 left: %v, want TRYAGAIN", err)
	}
	res, err := http.Get("http://" + n.AdminAddr() + "/metrics")
	must(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`cairn_resp_commands_total{command="GET",outcome="ok"} 4`,
		`cairn_resp_commands_total{command="GET",outcome="exhausted"} 3`,
		`cairn_resp_connections 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestPipelinedSetsKeepTheRate: a pipeline of more plain SETs than the
// tenant's burst is admitted in parts of at most the burst, each on its
// own, so the SETs past the rate are refused as they would be one by one
// (a run admitted whole took one burst for any number of SETs).
func TestPipelinedSetsKeepTheRate(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.Limits.TenantRate, c.Limits.TenantBurst = 0.001, 3 })
	ctx := context.Background()
	acme := client(t, n, "acme", acmeToken, 1)
	cmds, _ := acme.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range 7 {
			p.Set(ctx, fmt.Sprintf("p%d", i), "{}", 0)
		}
		return nil
	})
	var ok, again int
	for _, c := range cmds {
		switch err := c.Err(); {
		case err == nil:
			ok++
		case strings.HasPrefix(err.Error(), "TRYAGAIN"):
			again++
		default:
			t.Errorf("%v: %v", c.Args(), err)
		}
	}
	// 3 OK and 4 TRYAGAIN when the node reads the pipeline at once; a read
	// split in parts can admit one part more on a last token (owing).
	if ok+again != 7 || ok < 3 || ok > 4 {
		t.Errorf("7 pipelined SETs on a burst of 3: %d OK, %d TRYAGAIN; want 3 (or 4) and the rest", ok, again)
	}
}

// serveFront serves a RESP front made with opt on a loopback port until
// the test ends, and returns its address.
func serveFront(t *testing.T, opt resp.Options) string {
	t.Helper()
	_, addr := serveFrontS(t, opt)
	return addr
}

// serveFrontS is serveFront, with the server.
func serveFrontS(t *testing.T, opt resp.Options) (*resp.Server, string) {
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
	return s, ln.Addr().String()
}

// TestIdleClose: a signed-in connection that sends no complete command
// within the idle limit is closed, whether it sends nothing or dribbles a
// command.
func TestIdleClose(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	addr := serveFront(t, resp.Options{Docs: &servertest.Mem{}, Auth: auth, Idle: 100 * time.Millisecond})
	signIn := "AUTH acme " + acmeToken + "\r\n"
	for _, send := range []string{"", "*2\r\n$3\r\nGET\r\n$1"} {
		c, err := net.Dial("tcp", addr)
		must(t, err)
		c.Write([]byte(signIn + send))
		c.SetReadDeadline(time.Now().Add(20 * time.Second)) // far beyond the idle limit: only a bug reaches it
		start := time.Now()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "+OK\r\n" {
			t.Fatalf("after sending %q and waiting %v: %q, %v; want +OK, then the server to close", send, time.Since(start), got, err)
		}
	}
}

// TestNoIdleLimit: with a negative Idle (Redis's "timeout 0") a signed-in
// connection is never closed for idling, past the sign-in's deadline too.
func TestNoIdleLimit(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	addr := serveFront(t, resp.Options{Docs: &servertest.Mem{}, Auth: auth, Idle: -1, AuthTimeout: 50 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	must(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
	io.WriteString(c, "AUTH acme "+acmeToken+"\r\n")
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("AUTH: %q, %v", line, err)
	}
	// Ten times the sign-in's deadline with nothing sent: the read must end
	// at the client's own deadline, not at the server closing.
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if b, err := r.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle signed-in connection without an idle limit: read %q, %v; want the client's own timeout", b, err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "PING\r\n")
	if line, err := r.ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING after idling: %q, %v", line, err)
	}
}

// TestAuthTimeout: a connection that has not signed in within AuthTimeout
// of its accept is told so and closed, however many commands it sends
// meanwhile (each refused -NOAUTH), whereas the idle limit would hold its
// place for minutes; a connection that signs in is not.
func TestAuthTimeout(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	addr := serveFront(t, resp.Options{Docs: &servertest.Mem{}, Auth: auth, AuthTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second)) // far beyond AuthTimeout: only a bug reaches it
	r := bufio.NewReader(c)
	var got []string
	for {
		if _, err := io.WriteString(c, "PING\r\n"); err != nil {
			break // closed
		}
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		got = append(got, line)
	}
	if n := len(got); n < 2 || !strings.HasPrefix(got[0], "-NOAUTH") || got[n-1] != "-ERR no AUTH within 200ms; closing the connection\r\n" {
		t.Fatalf("replies %q; want -NOAUTH, then the timeout's error", got)
	}

	// Signed in, the connection outlives AuthTimeout: a command sent after
	// it (the server's clock, not a sleep: the read blocks on nothing
	// else) is answered.
	s, err := net.Dial("tcp", addr)
	must(t, err)
	defer s.Close()
	s.SetDeadline(time.Now().Add(20 * time.Second))
	sr := bufio.NewReader(s)
	io.WriteString(s, "AUTH acme "+acmeToken+"\r\n")
	if line, err := sr.ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("AUTH: %q, %v", line, err)
	}
	<-time.After(400 * time.Millisecond) // past AuthTimeout from the accept
	io.WriteString(s, "PING\r\n")
	if line, err := sr.ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING after AuthTimeout, signed in: %q, %v; want +PONG", line, err)
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
// crash on, spin on, or buffer without bound gets Redis's protocol error
// and a closed connection, and the server goes on serving: a bulk length
// near MaxInt64, a multibulk count near it (the client then gone), an
// inline line past 64 KiB, a command over the limit made of arguments
// each under it, and, before AUTH, past Redis's limits for an
// unauthenticated client.
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
		{"inline line", "AUTH acme " + acmeToken + "\r\n" + strings.Repeat(" ", 70<<10), "+OK\r\n-ERR Protocol error: too big inline request"},
		{"arguments over the limit", "AUTH acme " + acmeToken + "\r\n" + over, "+OK\r\n-ERR command larger than"},
		// Before AUTH, Redis's limits for an unauthenticated client, so that
		// no one without a token makes the node hold more per connection.
		{"unauthenticated bulk", "*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$20000\r\n", "-ERR Protocol error: unauthenticated bulk length"},
		{"unauthenticated arguments", "*11\r\n", "-ERR Protocol error: unauthenticated multibulk length"},
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
	// A command pipelined after AUTH, in the same write, is framed under
	// the limits of a signed-in connection.
	c, err := net.Dial("tcp", addr)
	must(t, err)
	value := `{"v":"` + strings.Repeat("x", 900) + `"}`
	_, err = io.WriteString(c, "AUTH acme "+acmeToken+"\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$"+strconv.Itoa(len(value))+"\r\n"+value+"\r\nQUIT\r\n")
	must(t, err)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	reply, err := io.ReadAll(c)
	c.Close()
	if want := "+OK\r\n+OK\r\n+OK\r\n"; err != nil || string(reply) != want {
		t.Errorf("AUTH and SET in one write: %q, %v; want %q", reply, err, want)
	}
	// Inline commands, blank lines and empty multibulk commands between
	// multibulk ones are served in order, as Redis serves them.
	c, err = net.Dial("tcp", addr)
	must(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "AUTH acme "+acmeToken+"\r\n"+strings.Repeat("\r\n", 40000)+
		"*0\r\nPING\r\n*1\r\n$4\r\nPING\r\nECHO \"\\x7b\\x7d\"\r\nQUIT\r\n")
	must(t, err)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	reply, err = io.ReadAll(c)
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

// gateDocs holds a Get of the key "gate" until open is closed.
type gateDocs struct {
	*servertest.Mem
	open chan struct{}
}

func (d gateDocs) Get(ctx context.Context, tenant, key string) (server.Doc, error) {
	if key == "gate" {
		<-d.open
	}
	return d.Mem.Get(ctx, tenant, key)
}

// TestLargeRepliesSentMidPipeline: the replies of a pipeline of reads of
// large documents are sent as they pass the flush size, not held until the
// pipeline has run, so a client that reads none of them cannot make the
// node hold them all.
func TestLargeRepliesSentMidPipeline(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	docs := gateDocs{Mem: &servertest.Mem{}, open: make(chan struct{})}
	big := `{"v":"` + strings.Repeat("x", 100<<10) + `"}`
	_, _, err = docs.Mem.Put(context.Background(), "acme", "big", []byte(big), doc.Precondition{})
	must(t, err)
	_, _, err = docs.Mem.Put(context.Background(), "acme", "gate", []byte(`{}`), doc.Precondition{})
	must(t, err)
	addr := serveFront(t, resp.Options{Docs: docs, Auth: auth, MaxBodyBytes: 1 << 20})
	c, err := net.Dial("tcp", addr)
	must(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "AUTH acme "+acmeToken+"\r\n")
	must(t, err)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	// Five reads of 100 KiB, then one the server cannot finish until the
	// test has received the replies before it.
	_, err = io.WriteString(c, strings.Repeat("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", 5)+"*2\r\n$3\r\nGET\r\n$4\r\ngate\r\n")
	must(t, err)
	c.SetReadDeadline(time.Now().Add(20 * time.Second)) // only a server holding the replies reaches it
	got, err := io.ReadFull(c, make([]byte, 3*len(big)))
	if err != nil {
		t.Fatalf("received %d bytes of the replies while the pipeline's last command ran (%v): the replies were held", got, err)
	}
	close(docs.open)
	rest, want := 0, 5*(len(big)+len("$102408\r\n\r\n"))+len("$2\r\n{}\r\n")-got
	for rest < want && err == nil {
		var n int
		n, err = c.Read(make([]byte, 64<<10))
		rest += n
	}
	if rest != want {
		t.Fatalf("after the gate: %d more bytes, %v; want %d", rest, err, want)
	}
}

// TestStalledReaderHoldsNoDrain: a client that pipelines GETs of large
// documents and does not read their replies holds its own connection
// only: a shutdown's drain does not wait for it, which would last up to
// the write timeout, past any drain timeout.
func TestStalledReaderHoldsNoDrain(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	mem := &servertest.Mem{}
	big := `{"v":"` + strings.Repeat("x", 512<<10) + `"}`
	_, _, err = mem.Put(context.Background(), "acme", "big", []byte(big), doc.Precondition{})
	must(t, err)
	s, err := resp.New(resp.Options{Docs: mem, Auth: auth, MaxBodyBytes: 1 << 20, WriteTimeout: time.Hour})
	must(t, err)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ln := &stallListener{Listener: inner, blocked: make(chan struct{}, 1)}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	c, err := net.Dial("tcp", inner.Addr().String())
	must(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "AUTH acme "+acmeToken+"\r\n"+strings.Repeat("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", 3))
	must(t, err)
	<-ln.blocked // a send of replies waits on the client, which reads nothing
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with a client not reading its replies: %v; want the drain done", err)
	}
	ln.Close()
	<-served
}

// stallListener's connections take the first 64 KiB the server sends
// and then block every send until the connection is closed, as a client
// that stops reading does once the socket's buffers are full; blocked is
// told when a send first waits.
type stallListener struct {
	net.Listener
	blocked chan struct{}
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c, blocked: l.blocked, closed: make(chan struct{})}, nil
}

type stallConn struct {
	net.Conn
	blocked   chan struct{}
	sent      int // the server writes from one goroutine per connection
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *stallConn) Write(p []byte) (int, error) {
	if c.sent+len(p) > 64<<10 {
		select {
		case c.blocked <- struct{}{}:
		default:
		}
		<-c.closed
		return 0, net.ErrClosed
	}
	c.sent += len(p)
	return c.Conn.Write(p)
}

func (c *stallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestMGetReplyBounded: an MGET whose documents come to more than its
// bound is refused whole, rather than built in memory.
func TestMGetReplyBounded(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	mem := &servertest.Mem{}
	big := []byte(`{"v":"` + strings.Repeat("x", 1<<20) + `"}`)
	_, _, err = mem.Put(context.Background(), "acme", "big", big, doc.Precondition{})
	must(t, err)
	addr := serveFront(t, resp.Options{Docs: mem, Auth: auth, MaxBodyBytes: 2 << 20})
	rc := redis.NewClient(&redis.Options{Addr: addr, Username: "acme", Password: acmeToken, MaxRetries: -1})
	defer rc.Close()
	keys := make([]string, 16) // 16 MiB and a little: over the bound
	for i := range keys {
		keys[i] = "big"
	}
	err = rc.MGet(context.Background(), keys...).Err()
	if err == nil || !strings.Contains(err.Error(), "MGET reply larger than") {
		t.Fatalf("MGET of 16 documents of 1 MiB: %v, want the reply refused", err)
	}
	vals, err := rc.MGet(context.Background(), keys[:8]...).Result()
	if err != nil || len(vals) != 8 || vals[7] != string(big) {
		t.Fatalf("MGET of 8: %d values, %v", len(vals), err)
	}
}

// TestMaxClients: past MaxClients connections a new one is answered as
// Redis answers it and closed, logged once however many are refused; once
// one closes, a new one is served.
func TestMaxClients(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{})
	must(t, err)
	var logged procout.Buffer
	srv, addr := serveFrontS(t, resp.Options{Docs: &servertest.Mem{}, Auth: auth, MaxClients: 2,
		Logger: slog.New(slog.NewJSONHandler(&logged, nil))})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		must(t, err)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		return c
	}
	// exchange sends a command and reads until the reply is whole or the
	// connection ends.
	exchange := func(c net.Conn, cmd, want string) {
		t.Helper()
		if cmd != "" {
			_, err := io.WriteString(c, cmd)
			must(t, err)
		}
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
			t.Fatalf("after %q: %q, %v; want %q", cmd, got, err, want)
		}
	}
	c1, c2 := dial(), dial()
	defer c2.Close()
	exchange(c1, "RESET\r\n", "+RESET\r\n")
	exchange(c2, "RESET\r\n", "+RESET\r\n")
	for range 5 {
		c3 := dial()
		exchange(c3, "", "-ERR max number of clients reached\r\n")
		if n, err := c3.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("the refused connection: %d, %v; want it closed", n, err)
		}
		c3.Close()
	}
	if n := strings.Count(logged.String(), "max number of clients reached"); n != 1 {
		t.Errorf("5 refused connections logged %d times, want once:\n%s", n, logged.String())
	}
	if n := srv.RefusedClients(); n != 5 {
		t.Errorf("RefusedClients() = %d, want 5 (cairn_shed_total{reason=\"conns\"})", n)
	}
	exchange(c1, "QUIT\r\n", "+OK\r\n")
	if _, err := c1.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after QUIT: %v, want the connection closed", err)
	}
	c1.Close()
	c4 := dial()
	defer c4.Close()
	exchange(c4, "RESET\r\n", "+RESET\r\n")
}

// TestAuthTimeoutOverWriteTimeout: the auth timeout's message is written
// with a deadline of its own, where one counted from the accept had passed
// when AuthTimeout was longer than WriteTimeout, and the client saw EOF.
func TestAuthTimeoutOverWriteTimeout(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	addr := serveFront(t, resp.Options{Docs: &servertest.Mem{}, Auth: auth, AuthTimeout: 300 * time.Millisecond, WriteTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second)) // far beyond the timeouts: only a bug reaches it
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "-ERR no AUTH within 300ms; closing the connection\r\n" {
		t.Fatalf("got %q, %v; want the timeout's error, then the end", got, err)
	}
}

// refuseDocs refuses every write of a key named "c…" as a document with
// open siblings.
type refuseDocs struct{ *servertest.Mem }

func (d refuseDocs) Put(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (string, bool, error) {
	if strings.HasPrefix(key, "c") {
		return "", false, fault.New(fault.Conflict, fault.Context{}, "open siblings")
	}
	return d.Mem.Put(ctx, tenant, key, body, pre)
}

func (d refuseDocs) Delete(ctx context.Context, tenant, key string, pre doc.Precondition) error {
	if strings.HasPrefix(key, "c") {
		return fault.New(fault.Conflict, fault.Context{}, "open siblings")
	}
	return d.Mem.Delete(ctx, tenant, key, pre)
}

// TestMultiKeyPartly: an MSET or DEL whose write of one key fails says
// which key, and how many of its keys it wrote, which are then exactly
// those stored (or gone).
func TestMultiKeyPartly(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	mem := &servertest.Mem{}
	addr := serveFront(t, resp.Options{Docs: refuseDocs{mem}, Auth: auth})
	rc := redis.NewClient(&redis.Options{Addr: addr, Username: "acme", Password: acmeToken, MaxRetries: -1})
	defer rc.Close()
	ctx := context.Background()
	said := regexp.MustCompile(`^CONFLICT open siblings \(key 'cf'; (MSET|DEL) is not atomic: (\d) of its (\d) keys were (written|deleted or found absent), the rest not\)$`)

	err = rc.MSet(ctx, "a", `1`, "cf", `2`, "b", `3`).Err()
	m := said.FindStringSubmatch(fmt.Sprint(err))
	if m == nil || m[1] != "MSET" || m[3] != "3" {
		t.Fatalf("MSET with a refused key: %v", err)
	}
	if stored := mem.Len("acme"); fmt.Sprint(stored) != m[2] {
		t.Errorf("MSET said %s of its keys were written; %d are stored", m[2], stored)
	}

	must(t, rc.MSet(ctx, "a", `1`, "b", `3`).Err())
	err = rc.Del(ctx, "a", "cf", "b").Err()
	m = said.FindStringSubmatch(fmt.Sprint(err))
	if m == nil || m[1] != "DEL" || m[3] != "3" {
		t.Fatalf("DEL with a refused key: %v", err)
	}
	if left := mem.Len("acme"); fmt.Sprint(2-left) != m[2] {
		t.Errorf("DEL said %s of its keys were deleted; %d of 2 are gone", m[2], 2-left)
	}
	// One key: its name, and no talk of the command's other keys.
	if err := rc.Del(ctx, "cf").Err(); fmt.Sprint(err) != "CONFLICT open siblings (key 'cf')" {
		t.Errorf("DEL of one refused key: %v", err)
	}
}

// catchingUpDocs answers every key named "u…" as a tenant catching up
// does for a key it has not restored yet: not found, as a CatchingUpError.
type catchingUpDocs struct{ *servertest.Mem }

func notRestored(tenant string) error {
	return &server.CatchingUpError{Tenant: tenant, Msg: "the key is not restored yet", Err: fault.New(fault.NotFound, fault.Context{}, "no such document")}
}

func (d catchingUpDocs) Get(ctx context.Context, tenant, key string) (server.Doc, error) {
	if strings.HasPrefix(key, "u") {
		return server.Doc{}, notRestored(tenant)
	}
	return d.Mem.Get(ctx, tenant, key)
}

func (d catchingUpDocs) Delete(ctx context.Context, tenant, key string, pre doc.Precondition) error {
	if strings.HasPrefix(key, "u") {
		return notRestored(tenant)
	}
	return d.Mem.Delete(ctx, tenant, key, pre)
}

// TestCatchingUpIsNoAnswer: a key a catching-up tenant has not restored
// may hold a document: GET, MGET, EXISTS, TYPE and DEL answer TRYAGAIN, as
// HTTP answers 503 catching_up, never a null, 0 or none, which a client
// takes for an answer (a DEL that answered 0 dropped the delete).
func TestCatchingUpIsNoAnswer(t *testing.T) {
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	must(t, err)
	addr := serveFront(t, resp.Options{Docs: catchingUpDocs{&servertest.Mem{}}, Auth: auth})
	rc := redis.NewClient(&redis.Options{Addr: addr, Username: "acme", Password: acmeToken, MaxRetries: -1})
	defer rc.Close()
	ctx := context.Background()
	for _, cmd := range [][]any{{"GET", "u1"}, {"MGET", "a", "u1"}, {"EXISTS", "u1"}, {"TYPE", "u1"}, {"DEL", "u1"}, {"DEL", "a", "u1"}, {"UNLINK", "u1"}, {"JSON.GET", "u1"}} {
		got, err := rc.Do(ctx, cmd...).Result()
		if err == nil || !strings.HasPrefix(err.Error(), "TRYAGAIN tenant acme is catching up") {
			t.Errorf("%q: %v, %v; want TRYAGAIN tenant acme is catching up …", cmd, got, err)
		}
	}
	if got, err := rc.Get(ctx, "absent").Result(); err != redis.Nil {
		t.Errorf("GET of a key the node knows absent: %q, %v; want nil", got, err)
	}
}
