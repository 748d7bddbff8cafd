package s3_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend/s3"
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
