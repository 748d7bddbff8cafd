package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/tlscert/tlscerttest"
)

// TestTLSOnTheBinary: 'cairn serve --tls-cert --tls-key' serves both
// listeners over TLS 1.2+ only, to a client trusting the test's CA; it
// serves a replaced certificate after SIGHUP and after the files change,
// and a broken replacement keeps the certificate, logs an error and counts.
func TestTLSOnTheBinary(t *testing.T) {
	dir := t.TempDir()
	ca, certFile, keyFile := tlscerttest.NewCAWithLeaf(t, dir)
	p := startNode(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(p.URL, "https://") {
		t.Fatalf("serve printed URL %q, want https://", p.URL)
	}
	api := strings.TrimPrefix(p.URL, "https://")
	admin := adminAddr(t, p)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientConfig()}}
	defer hc.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodPut, p.URL+"/v1/tenants/demo/docs/over-tls", strings.NewReader(`{"tls":true}`))
	req.Header.Set("Authorization", "Bearer "+p.Token)
	if code, body := sendTLS(t, hc, req); code != http.StatusCreated {
		t.Fatalf("PUT over TLS: %d %s", code, body)
	}
	for _, addr := range []string{api, admin} {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/livez", nil)
		if code, body := sendTLS(t, hc, req); code != http.StatusOK {
			t.Errorf("GET https://%s/livez: %d %s", addr, code, body)
		}
		resp, err := http.Get("http://" + addr + "/livez")
		if err != nil {
			t.Fatalf("plain HTTP to the TLS port %s: %v; want a 400 saying to use HTTPS", addr, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTPS") {
			t.Errorf("plain HTTP to the TLS port %s: %s %q; want a 400 saying to use HTTPS", addr, resp.Status, b)
		}
		old := ca.ClientConfig()
		old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		if conn, err := tls.Dial("tcp", addr, old); err == nil {
			conn.Close()
			t.Errorf("a TLS 1.1 handshake with %s succeeded", addr)
		}
		if got := servedSerial(t, ca, addr); got != 1 {
			t.Errorf("%s serves serial %d, want 1", addr, got)
		}
	}

	ca.Issue(t, 2, certFile, keyFile)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, ca, api, 2)
	waitSerial(t, ca, admin, 2)

	// No signal: a handshake notices the changed files within seconds.
	ca.Issue(t, 3, certFile, keyFile)
	later := time.Now().Add(time.Hour) // distinct from the last load's, whatever the timestamp resolution
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	waitSerial(t, ca, api, 3)

	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	tlsPoll(t, "cairn_tls_certificate_reloads_total{outcome=\"error\"} 1 on /metrics", func() bool {
		req, _ := http.NewRequest(http.MethodGet, "https://"+admin+"/metrics", nil)
		_, body := sendTLS(t, hc, req)
		return strings.Contains(body, `cairn_tls_certificate_reloads_total{outcome="error"} 1`)
	})
	if got := servedSerial(t, ca, api); got != 3 {
		t.Errorf("after a failed reload: serial %d, want 3 still", got)
	}
	if !strings.Contains(p.stderr.String(), "TLS certificate reload failed") {
		t.Errorf("no log line for the failed reload:\n%s", p.stderr)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("serve after SIGHUPs and SIGTERM: %v\n%s", err, p.stderr)
	}
}

func sendTLS(t *testing.T, hc *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// servedSerial makes a fresh TLS handshake with addr, trusting only ca, and
// returns the serial of the certificate it was given.
func servedSerial(t *testing.T, ca *tlscerttest.CA, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, ca.ClientConfig())
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func waitSerial(t *testing.T, ca *tlscerttest.CA, addr string, want int64) {
	t.Helper()
	tlsPoll(t, "a handshake with "+addr+" serving the new certificate", func() bool { return servedSerial(t, ca, addr) == want })
}

// tlsPoll polls cond (across processes, so polling with a deadline).
func tlsPoll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
