package s3_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/s3"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// TestCheckBucketClasses: the start check tells no answer of the store's
// (transient: a node with documents starts without it) from an answer or a
// setting (config: no node starts).
func TestCheckBucketClasses(t *testing.T) {
	status := func(code int) string {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		t.Cleanup(ts.Close)
		return strings.TrimPrefix(ts.URL, "http://")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	tlsRefused := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tlsRefused.TLS = &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}}
	tlsRefused.StartTLS()
	t.Cleanup(tlsRefused.Close)
	for _, tc := range []struct {
		name     string
		endpoint string
		insecure bool
		want     fault.Class
	}{
		{"connection refused", closed, true, fault.Transient},
		{"a gateway's 503", status(http.StatusServiceUnavailable), true, fault.Transient},
		{"a store answering only 429", status(http.StatusTooManyRequests), true, fault.Transient},
		{"credentials refused", status(http.StatusForbidden), true, fault.Config},
		{"TLS handshake refused", strings.TrimPrefix(tlsRefused.URL, "https://"), false, fault.Config},
		{"TLS to a plain port", status(http.StatusOK), false, fault.Config},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s3.New("s3", s3.Config{Bucket: "cairn", Endpoint: tc.endpoint, Insecure: tc.insecure, Creds: creds()})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			err = b.CheckBucket(ctx)
			if got := fault.ClassOf(err); got != tc.want {
				t.Errorf("class %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

// TestResetIsTransient: a connection the store's side drops before
// answering is a transient failure, retried by the backend's policy, where
// it was of no class and never retried; the client makes one attempt, so
// the policy's retries, budget and Retry-After govern.
func TestResetIsTransient(t *testing.T) {
	var calls atomic.Int64
	b := fakeStore(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	})
	_, err := b.Get(context.Background(), "acme", "k")
	if got := fault.ClassOf(err); got != fault.Transient {
		t.Errorf("class %v (%v), want transient", got, err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d requests for one Get, want 1: the client's own retries would hide under the policy's", n)
	}
}

// TestSlowDownCarriesRetryAfter: a throttled answer's Retry-After reaches
// the error, for the policy to wait at least that long.
func TestSlowDownCarriesRetryAfter(t *testing.T) {
	b := fakeStore(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`))
	})
	_, err := b.Get(context.Background(), "acme", "k")
	ra, ok := fault.RetryAfter(err)
	if fault.ClassOf(err) != fault.Transient || !ok || ra != 7*time.Second {
		t.Errorf("%v: class %v, Retry-After %v (%v); want transient, 7s", err, fault.ClassOf(err), ra, ok)
	}
}

// TestCheckBucketSaysWhy: a refusal at start without credentials says none
// were found, and a 400 asks about the region; a HEAD's answer has no body
// to say it.
func TestCheckBucketSaysWhy(t *testing.T) {
	status := func(code int) string {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		t.Cleanup(ts.Close)
		return strings.TrimPrefix(ts.URL, "http://")
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	b, err := s3.New("s3", s3.Config{Bucket: "cairn", Endpoint: status(http.StatusForbidden), Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.CheckBucket(context.Background()); fault.ClassOf(err) != fault.Config || !strings.Contains(fmt.Sprint(err), "no AWS credentials found") {
		t.Errorf("without credentials: %v, want a config error saying none were found", err)
	}
	b, err = s3.New("s3", s3.Config{Bucket: "cairn", Endpoint: status(http.StatusBadRequest), Insecure: true, Region: "eu-west-9", Creds: creds()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.CheckBucket(context.Background()); !strings.Contains(fmt.Sprint(err), "is region=eu-west-9 the bucket's region?") {
		t.Errorf("a 400 with region eu-west-9: %v, want the region asked about", err)
	}
}

// fakeStore is a backend on bucket cairn of an endpoint that answers with
// handler, until the test ends.
func fakeStore(t *testing.T, handler http.HandlerFunc) *s3.S3 {
	t.Helper()
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	// A region, so that a call is the object's request and not minio's
	// lookup of the bucket's region.
	b, err := s3.New("s3", s3.Config{Bucket: "cairn", Endpoint: strings.TrimPrefix(ts.URL, "http://"), Insecure: true,
		Region: "us-east-1", Creds: creds()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestRegionCorrectionRetried: without region=, a refusal naming the
// bucket's region (minio takes it for its next signature) is transient,
// for the policy to retry signed right, not a setting.
func TestRegionCorrectionRetried(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		if r.URL.Query().Has("location") {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`))
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region></Error>`))
	}))
	defer ts.Close()
	b, err := s3.New("s3", s3.Config{Bucket: "cairn", Endpoint: strings.TrimPrefix(ts.URL, "http://"), Insecure: true, Creds: creds()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Get(context.Background(), "acme", "k"); fault.ClassOf(err) != fault.Transient {
		t.Errorf("a refusal naming the bucket's region: class %v (%v), want transient", fault.ClassOf(err), err)
	}
}

// TestPutWithoutETagFails: a PUT answered 200 with no ETag (a proxy's error
// page, say) is a transient failure, never a stored object, for objects and
// blobs alike.
func TestPutWithoutETagFails(t *testing.T) {
	b := fakeStore(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>`))
	})
	v := doc.Version{Hash: doc.HashBody([]byte(`{"a":1}`))}
	if etag, err := b.Put(context.Background(), "acme", "k", v, []byte(`{"a":1}`), backend.Precondition{}); fault.ClassOf(err) != fault.Transient {
		t.Errorf("Put answered 200 without an ETag: %q, %v; want a transient failure", etag, err)
	}
	if etag, err := b.PutBlob(context.Background(), "_cairn/feed/x", []byte("x"), backend.Precondition{}); fault.ClassOf(err) != fault.Transient {
		t.Errorf("PutBlob answered 200 without an ETag: %q, %v; want a transient failure", etag, err)
	}
}

// TestCheckBucketRidesOutBusyAnswers: a store that answers 503 to the
// start check and then 200 passes it; the check tries again on a busy
// answer only.
func TestCheckBucketRidesOutBusyAnswers(t *testing.T) {
	var calls atomic.Int64
	b := fakeStore(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := b.CheckBucket(ctx); err != nil || calls.Load() != 3 {
		t.Errorf("CheckBucket after two 503s: %v after %d requests; want success on the third", err, calls.Load())
	}
}
