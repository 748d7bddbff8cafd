// Package s3test runs a real S3-compatible server, versitygw (posix
// backend, a temporary directory), on loopback for tests of the s3 backend
// and of nodes replicating to S3.
//
// The binary is $CAIRN_VERSITYGW_BIN, or .tools/versitygw-<Version>/versitygw
// under the module root, as built by scripts/versitygw.sh. When it is
// missing, [Start] fails the test under CI=true and skips it otherwise,
// saying how to build it.
//
// Each [Gateway] gets a free port (from [proctest.FreePorts], so another
// process could take it first: Start then fails with the gateway's log) and
// is stopped (SIGINT, then SIGKILL after 10s) and waited for in t.Cleanup.
package s3test

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnstore/cairn/internal/backend/s3/versitygw"
	"github.com/cairnstore/cairn/internal/proctest"
)

// Version is the versitygw release scripts/versitygw.sh builds.
const Version = "v1.8.0"

// AccessKey and SecretKey are the gateway's only credentials.
const AccessKey, SecretKey = "cairn-test-access", "cairn-test-secret-key"

// Creds returns the gateway's credentials.
func Creds() *credentials.Credentials { return credentials.NewStaticV4(AccessKey, SecretKey, "") }

// Gateway is a running versitygw.
type Gateway struct {
	Endpoint string // host:port, plain HTTP
	Logs     *proctest.SyncBuffer
}

// binary returns the versitygw binary: $CAIRN_VERSITYGW_BIN, or the one
// scripts/versitygw.sh builds under the module root, or "".
func binary() string {
	if p := os.Getenv("CAIRN_VERSITYGW_BIN"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	for err == nil {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".tools", "versitygw-"+Version, "versitygw")
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

// Start runs versitygw on a free loopback port, waits until it accepts
// connections, and creates bucket. Its objects live in a test's temporary
// directory.
func Start(t testing.TB, bucket string) *Gateway {
	t.Helper()
	return StartIn(t, bucket, "")
}

// StartIn is Start with the gateway's objects in a new directory under
// root ("" means the test's temporary directory), removed at cleanup.
// Benchmarks that fill the gateway with millions of objects put them on a
// tmpfs (/dev/shm), where the posix backend's one file and its extended
// attributes per object cost no disk writes.
func StartIn(t testing.TB, bucket, root string) *Gateway {
	t.Helper()
	return start(t, bucket, root, versitygw.KeepAlive())
}

// StartKeepAlive is Start with versitygw keeping connections open, as an
// S3 service does, whatever the environment says.
func StartKeepAlive(t testing.TB, bucket string) *Gateway {
	t.Helper()
	return start(t, bucket, "", true)
}

func start(t testing.TB, bucket, root string, keepAlive bool) *Gateway {
	t.Helper()
	bin := binary()
	if bin == "" {
		msg := "no versitygw binary; build it with `bash scripts/versitygw.sh` (or set CAIRN_VERSITYGW_BIN)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	addr := "127.0.0.1:" + strconv.Itoa(proctest.FreePorts(t, 1)[0])
	g := &Gateway{Endpoint: addr, Logs: &proctest.SyncBuffer{}}
	dir := t.TempDir()
	if root != "" {
		var err error
		if dir, err = os.MkdirTemp(root, "versitygw-"); err != nil {
			t.Fatalf("versitygw directory: %v", err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	cmd := exec.Command(bin, versitygw.Args(AccessKey, SecretKey, addr, dir, keepAlive)...)
	cmd.Stdout, cmd.Stderr = g.Logs, g.Logs
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
			t.Logf("versitygw output:\n%s", g.Logs.String())
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
			t.Fatalf("versitygw not listening on %s after 30s\n%s", addr, g.Logs.String())
		}
		select {
		case err := <-exited:
			t.Fatalf("versitygw exited: %v\n%s", err, g.Logs.String())
		case <-tick.C:
		}
	}
	mc := g.Client(t)
	if err := mc.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v\n%s", err, g.Logs.String())
	}
	return g
}

// Client returns a plain minio client of the gateway, for looking at the
// bucket independently of cairn; its idle connections close at cleanup.
func (g *Gateway) Client(t testing.TB) *minio.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	mc, err := minio.New(g.Endpoint, &minio.Options{Creds: Creds(), Transport: tr, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}
