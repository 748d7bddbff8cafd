package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.uber.org/goleak"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/backendtest"
	"github.com/cairnstore/cairn/internal/backend/s3"
	"github.com/cairnstore/cairn/internal/backend/s3/s3test"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type gateway struct{ *s3test.Gateway }

func startGateway(t *testing.T, bucket string) gateway { return gateway{s3test.Start(t, bucket)} }

const accessKey = s3test.AccessKey

func creds() *credentials.Credentials { return s3test.Creds() }

func (g gateway) backend(t *testing.T, bucket, prefix string) *s3.S3 {
	t.Helper()
	b, err := s3.New("s3", s3.Config{Bucket: bucket, Prefix: prefix, Endpoint: g.Endpoint, Insecure: true, Creds: creds()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	g := startGateway(t, "cairn")
	backendtest.Run(t, func(t *testing.T) backend.Backend { return g.backend(t, "cairn", "replica/") })
}

func TestCheckBucket(t *testing.T) {
	g := startGateway(t, "cairn")
	ctx := context.Background()
	if err := g.backend(t, "cairn", "").CheckBucket(ctx); err != nil {
		t.Fatalf("CheckBucket of an existing bucket: %v", err)
	}
	err := g.backend(t, "missing", "").CheckBucket(ctx)
	if fault.ClassOf(err) != fault.Config {
		t.Fatalf("CheckBucket of a missing bucket: %v, want class config", err)
	}
	// Operations on a missing bucket are configuration errors too.
	_, err = g.backend(t, "missing", "").Get(ctx, "t", "k")
	if fault.ClassOf(err) != fault.Config {
		t.Fatalf("Get in a missing bucket: %v, want class config", err)
	}
	// Bad credentials.
	b, err := s3.New("s3", s3.Config{Bucket: "cairn", Endpoint: g.Endpoint, Insecure: true,
		Creds: credentials.NewStaticV4(accessKey, "wrong", "")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Get(ctx, "t", "k"); fault.ClassOf(err) != fault.Unauthorized {
		t.Fatalf("Get with a wrong secret: %v, want class unauthorized", err)
	}
}

// TestUnreachable checks that a server that is not there is a transient
// failure with the backend's context, which the retry policy retries.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	b, err := s3.New("down", s3.Config{Bucket: "cairn", Endpoint: addr, Insecure: true, Creds: creds()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = b.Stat(ctx, "t", "k")
	if !errors.Is(err, fault.ErrTransient) {
		t.Fatalf("Stat on a closed port: %v, want transient", err)
	}
	if c := fault.ContextOf(err); c.Backend != "down" || c.Tenant != "t" || c.Key != "k" {
		t.Fatalf("context %+v", c)
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want s3.Config
	}{
		{"s3://bucket", s3.Config{Bucket: "bucket"}},
		{"s3://bucket/a/b?endpoint=127.0.0.1:9000&region=eu-west-1&insecure=1",
			s3.Config{Bucket: "bucket", Prefix: "a/b", Endpoint: "127.0.0.1:9000", Region: "eu-west-1", Insecure: true}},
	} {
		got, err := s3.ParseURL(tc.url)
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.url, got, err, tc.want)
		}
	}
	for _, bad := range []string{"http://bucket", "s3://", "s3://b?insecure=maybe", "s3://b?endpont=x", "s3://user:pw@b", "%"} {
		if _, err := s3.ParseURL(bad); fault.ClassOf(err) != fault.Config {
			t.Errorf("ParseURL(%q) = %v, want class config", bad, err)
		}
	}
	long := string(bytes.Repeat([]byte("p"), 800))
	if _, err := s3.New("s3", s3.Config{Bucket: "bucket", Prefix: long}); fault.ClassOf(err) != fault.Config {
		t.Errorf("New with an 800-byte prefix: %v, want class config", err)
	}
}

// TestConnectionsReused: bursts of concurrent calls, as the uploader makes,
// reuse the connections of the burst before instead of dialling anew (Go's
// default transport keeps 2 idle connections per host). The gateway runs
// with keep-alive, as a real S3 service does; a proxy in front of it
// counts the connections the backend opens.
func TestConnectionsReused(t *testing.T) {
	g := s3test.StartKeepAlive(t, "reuse")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		accepted atomic.Int64
		conns    sync.WaitGroup
	)
	conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns.Go(func() { proxy(c, g.Endpoint) })
		}
	})
	b, err := s3.New("s3", s3.Config{Bucket: "reuse", Endpoint: ln.Addr().String(), Insecure: true, Creds: creds()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close() // closes the idle connections, which ends their proxies
		ln.Close()
		conns.Wait()
	})
	const width, bursts = 32, 3
	body := []byte(`{"n":1}`)
	v := backendtest.Version(body, 7, 1000, false)
	for burst := range bursts {
		var calls sync.WaitGroup
		for i := range width {
			calls.Go(func() {
				if _, err := b.Put(context.Background(), "t", fmt.Sprintf("k%d-%d", burst, i), v, body, backend.Precondition{}); err != nil {
					t.Error(err)
				}
			})
		}
		calls.Wait()
	}
	if n := accepted.Load(); n > width+width/4 {
		t.Fatalf("%d bursts of %d concurrent puts opened %d connections; want the first burst's %d reused", bursts, width, n, width)
	}
}

// proxy copies between c and a new connection to addr until either side
// closes.
func proxy(c net.Conn, addr string) {
	defer c.Close()
	up, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, c)
		up.Close()
	}()
	_, _ = io.Copy(c, up)
	c.Close()
	<-done
}

// TestListSkipsForeignNames: an object under a tenant's prefix whose name
// cairn cannot have written (a gateway's temporary file, another tool's
// object) is left out of the listing, not an error that fails every round.
func TestListSkipsForeignNames(t *testing.T) {
	g := startGateway(t, "cairn")
	b := g.backend(t, "cairn", "replica/")
	ctx := context.Background()
	v := doc.Derive(nil, 1, 1, []byte(`{}`), false)
	if _, err := b.Put(ctx, "acme", "k", v, []byte(`{}`), backend.Precondition{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"replica/acme/.k.sgwtmp.1796568186065830126", "replica/acme/notes.txt"} {
		if _, err := g.Client(t).PutObject(ctx, "cairn", name, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := b.List(ctx, "acme", backend.ListOptions{})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Key != "k" {
		t.Fatalf("List with foreign objects beside k: %+v, %v; want k alone", page, err)
	}
}
