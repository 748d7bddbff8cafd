package s3_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.uber.org/goleak"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/backendtest"
	"github.com/cairnstore/cairn/internal/backend/s3"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/proctest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// versitygwVersion is the release scripts/versitygw.sh builds.
const versitygwVersion = "v1.8.0"

const accessKey, secretKey = "cairn-test-access", "cairn-test-secret-key"

// binary returns the versitygw binary: $CAIRN_VERSITYGW_BIN, or the one
// scripts/versitygw.sh builds under the module root, or "".
func binary() string {
	if p := os.Getenv("CAIRN_VERSITYGW_BIN"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	for err == nil {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".tools", "versitygw-"+versitygwVersion, "versitygw")
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return p
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	return ""
}

// gateway is a running versitygw serving a temporary directory.
type gateway struct {
	endpoint string
	logs     *proctest.SyncBuffer
}

// startGateway runs versitygw on a free loopback port, waits until it
// accepts connections, and creates bucket. Without the binary it fails
// under CI=true and skips otherwise.
func startGateway(t *testing.T, bucket string) *gateway {
	t.Helper()
	bin := binary()
	if bin == "" {
		msg := "no versitygw binary; build it with `bash scripts/versitygw.sh` (or set CAIRN_VERSITYGW_BIN)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // another process could take the port before versitygw: it then fails with its log
	g := &gateway{endpoint: addr, logs: &proctest.SyncBuffer{}}
	dir := t.TempDir()
	cmd := exec.Command(bin, "--quiet", "--access", accessKey, "--secret", secretKey, "--port", addr, "posix", dir)
	cmd.Stdout, cmd.Stderr = g.logs, g.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("versitygw output:\n%s", g.logs.String())
		}
	})
	// Poll across the process boundary until it accepts connections.
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw not listening on %s after 30s\n%s", addr, g.logs.String())
		}
		select {
		case err := <-exited:
			t.Fatalf("versitygw exited: %v\n%s", err, g.logs.String())
		case <-tick.C:
		}
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	mc, err := minio.New(addr, &minio.Options{Creds: creds(), Transport: tr, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v\n%s", err, g.logs.String())
	}
	return g
}

func creds() *credentials.Credentials { return credentials.NewStaticV4(accessKey, secretKey, "") }

func (g *gateway) backend(t *testing.T, bucket, prefix string) *s3.S3 {
	t.Helper()
	b, err := s3.New("s3", s3.Config{Bucket: bucket, Prefix: prefix, Endpoint: g.endpoint, Insecure: true, Creds: creds()})
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
	b, err := s3.New("s3", s3.Config{Bucket: "cairn", Endpoint: g.endpoint, Insecure: true,
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
