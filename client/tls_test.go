package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cairnstore/cairn/client"
	"github.com/cairnstore/cairn/internal/tlscert/tlscerttest"
)

// TestWithRootCAs: a node whose certificate a private CA signed is reached
// over https with that CA trusted, and refused without it.
func TestWithRootCAs(t *testing.T) {
	dir := t.TempDir()
	ca, certFile, keyFile := tlscerttest.NewCAWithLeaf(t, dir)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"e1"`)
		w.Write([]byte(`{"ok":true}`))
	}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	ts.StartTLS()
	defer ts.Close()

	pool, err := client.CertPool(ca.PEMFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{}}
	for name, c := range map[string]*client.Client{
		"default transport": client.New(ts.URL, "tok", client.WithRootCAs(pool)),
		"WithHTTPClient":    client.New(ts.URL, "tok", client.WithHTTPClient(hc), client.WithRootCAs(pool)),
	} {
		if d, err := c.Get(context.Background(), "demo", "k"); err != nil || string(d.Body) != `{"ok":true}` {
			t.Errorf("%s: Get over https with the CA trusted: %q, %v", name, d.Body, err)
		}
	}
	if tc := hc.Transport.(*http.Transport).TLSClientConfig; tc != nil && tc.RootCAs != nil {
		t.Error("WithRootCAs modified the http.Client given to WithHTTPClient")
	}
	c := client.New(ts.URL, "tok", client.WithRetry(client.RetryPolicy{MaxAttempts: 1}))
	var uae x509.UnknownAuthorityError
	if _, err := c.Get(context.Background(), "demo", "k"); !errors.As(err, &uae) {
		t.Errorf("Get without the CA: %v; want x509.UnknownAuthorityError", err)
	}
	if _, err := client.CertPool(certFile + ".missing"); err == nil {
		t.Error("CertPool of a missing file succeeded")
	}
	if _, err := client.CertPool(keyFile); err == nil {
		t.Error("CertPool of a key file succeeded")
	}
}
