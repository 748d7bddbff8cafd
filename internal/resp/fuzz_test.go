package resp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/resp"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/servertest"
)

// FuzzConnection sends arbitrary bytes, after AUTH, on a connection to a
// Server over the in-memory document service: whatever they are, the
// server answers or closes that connection and keeps serving others (a
// panic on a connection's goroutine would end the process), and a value it
// stored is valid JSON.
func FuzzConnection(f *testing.F) {
	for _, seed := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n{}\r\n",
		"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n[]\r\n$7\r\nIFMATCH\r\n$1\r\nx\r\n",
		"*4\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nMATCH\r\n$2\r\na*\r\n",
		"*3\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n",
		"*4\r\n$8\r\nJSON.SET\r\n$1\r\nk\r\n$1\r\n$\r\n$1\r\n1\r\n",
		"SET k {}\r\nGET k\r\nMGET k k\r\n",
		"*1\r\n$-1\r\n",
		"*-5\r\n",
		"$5\r\nhello\r\n",
		"CLIENT SETNAME \"a b\"\r\n",
	} {
		f.Add([]byte(seed))
	}
	docs := &servertest.Mem{}
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	if err != nil {
		f.Fatal(err)
	}
	s, err := resp.New(resp.Options{Docs: docs, Auth: auth, MaxBodyBytes: 4096})
	if err != nil {
		f.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	f.Cleanup(func() {
		s.Shutdown(context.Background())
		<-served
	})
	auth1 := []byte("*3\r\n$4\r\nAUTH\r\n$4\r\nacme\r\n$" + itoa(len(acmeToken)) + "\r\n" + acmeToken + "\r\n")
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(append(append([]byte{}, auth1...), in...))
		// Half-close: the server reads EOF after the input, answers what it
		// could parse and closes. The deadline bounds a reply that never
		// ends, which would be a bug.
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("reading the replies: %v (got %q)", err, out)
		}
		// redcon parses what one read brought before it runs any of it:
		// a protocol error drops the commands read with it (not run, not
		// answered) and is the only reply.
		if !bytes.HasPrefix(out, []byte("+OK\r\n")) && !bytes.HasPrefix(out, []byte("-ERR Protocol error")) {
			t.Fatalf("AUTH answered %q", out)
		}
		// The server still serves a new connection.
		c2, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.Write([]byte("PING\r\n"))
		c2.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		m, _ := io.ReadAtLeast(c2, buf, 1)
		if string(buf[:m]) != "-NOAUTH Authentication required: send AUTH tenant token\r\n" {
			t.Fatalf("after the input, a new connection's PING: %q", buf[:m])
		}
		if d, err := docs.Get(context.Background(), "acme", "k"); err == nil && !jsonValid(d.Body) {
			t.Fatalf("stored a value that is not JSON: %q", d.Body)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func jsonValid(b []byte) bool { return json.Valid(b) }
