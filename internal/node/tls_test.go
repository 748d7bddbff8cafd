package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/tlscert/tlscerttest"
)

// tlsGet makes a fresh connection (so a fresh handshake) trusting only ca
// and returns the status, body and the serial of the certificate served.
func tlsGet(t *testing.T, ca *tlscerttest.CA, url string) (int, string, int64) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: ca.ClientConfig(), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

// TestTLSBothListeners: with a certificate, the API and the admin listener
// answer over TLS only; ReloadTLS serves replaced files from the next
// handshake, and a failed reload keeps the certificate, logs an error and
// counts it.
func TestTLSBothListeners(t *testing.T) {
	dir := t.TempDir()
	ca, certFile, keyFile := tlscerttest.NewCAWithLeaf(t, dir)
	var logs proctest.SyncBuffer
	cfg := testConfig(t)
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	cfg.TLS = &TLS{CertFile: certFile, KeyFile: keyFile}
	cfg.Reload = make(chan os.Signal) // its watcher must stop with the node (goleak)
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	if !strings.HasPrefix(n.URL(), "https://") {
		t.Errorf("URL() = %q, want https://", n.URL())
	}
	for _, url := range []string{n.URL() + "/livez", "https://" + n.AdminAddr() + "/livez"} {
		if code, _, serial := tlsGet(t, ca, url); code != 200 || serial != 1 {
			t.Errorf("GET %s: %d, serial %d; want 200, serial 1", url, code, serial)
		}
		plain := "http://" + strings.TrimPrefix(url, "https://")
		resp, err := http.Get(plain)
		if err != nil {
			t.Fatalf("plain HTTP to %s: %v; want a 400 saying to use HTTPS", plain, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTPS") {
			t.Errorf("plain HTTP to %s: %s %q; want a 400 saying to use HTTPS", plain, resp.Status, b)
		}
		// As a proxy sends it, HTTP/2's preface, and CONNECT.
		host := strings.TrimPrefix(strings.TrimSuffix(url, "/livez"), "https://")
		for _, req := range []string{"GET http://" + host + "/livez HTTP/1.1\r\nHost: " + host + "\r\n\r\n",
			"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "CONNECT " + host + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"} {
			c, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, req)
			answer, _ := io.ReadAll(c)
			c.Close()
			if !strings.HasPrefix(string(answer), "HTTP/1.1 400") || !strings.Contains(string(answer), "HTTPS") {
				t.Errorf("%q to %s: %q; want a 400 saying to use HTTPS", req, host, answer)
			}
		}
	}

	ca.Issue(t, 2, certFile, keyFile)
	if err := n.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if _, _, serial := tlsGet(t, ca, n.URL()+"/livez"); serial != 2 {
		t.Errorf("after ReloadTLS: serial %d, want 2", serial)
	}

	if err := os.WriteFile(keyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.ReloadTLS(); err == nil {
		t.Fatal("ReloadTLS with a garbage key succeeded")
	}
	if _, _, serial := tlsGet(t, ca, n.URL()+"/livez"); serial != 2 {
		t.Errorf("after a failed reload: serial %d, want 2 still", serial)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"TLS certificate reload failed`) {
		t.Errorf("no error line for the failed reload in:\n%s", logs.String())
	}
	_, metrics, _ := tlsGet(t, ca, "https://"+n.AdminAddr()+"/metrics")
	for _, want := range []string{`cairn_tls_certificate_reloads_total{outcome="error"} 1`, `cairn_tls_certificate_reloads_total{outcome="ok"} 1`,
		"cairn_tls_certificate_expiry_timestamp_seconds "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestTLSRESPPlainClientTold: a client sending plain RESP to the RESP
// port of a node serving TLS is told, in plain RESP, to connect with TLS;
// a TLS client is served.
func TestTLSRESPPlainClientTold(t *testing.T) {
	ca, certFile, keyFile := tlscerttest.NewCAWithLeaf(t, t.TempDir())
	cfg := testConfig(t)
	cfg.RespListen = "127.0.0.1:0"
	cfg.TLS = &TLS{CertFile: certFile, KeyFile: keyFile}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())

	plain, err := net.Dial("tcp", n.RESPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := plain.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(plain)
	if !strings.HasPrefix(string(got), "-ERR this port serves RESP over TLS") {
		t.Errorf("plain RESP to the TLS port was answered %q; want an error reply saying to connect with TLS", got)
	}

	conn, err := tls.Dial("tcp", n.RESPAddr(), ca.ClientConfig())
	if err != nil {
		t.Fatalf("TLS to the RESP port: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "-NOAUTH") {
		t.Errorf("PING over TLS before AUTH: %q, %v; want -NOAUTH", line, err)
	}
}

// TestTLSRefusesOldVersions: below TLS 1.2 the handshake fails.
func TestTLSRefusesOldVersions(t *testing.T) {
	dir := t.TempDir()
	ca := tlscerttest.NewCA(t, dir)
	cfg := testConfig(t)
	cfg.TLS = &TLS{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	ca.Issue(t, 1, cfg.TLS.CertFile, cfg.TLS.KeyFile)
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	cc := ca.ClientConfig()
	cc.MinVersion, cc.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	conn, err := tls.Dial("tcp", n.Addr(), cc)
	if err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
}

// TestTLSBadFilesFailStart: a missing or mismatched pair stops Start with
// an error naming the flags.
func TestTLSBadFilesFailStart(t *testing.T) {
	dir := t.TempDir()
	ca := tlscerttest.NewCA(t, dir)
	ca.Issue(t, 1, filepath.Join(dir, "a.pem"), filepath.Join(dir, "a.key"))
	ca.Issue(t, 2, filepath.Join(dir, "b.pem"), filepath.Join(dir, "b.key"))
	for _, c := range []TLS{
		{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: filepath.Join(dir, "a.key")},
		{CertFile: filepath.Join(dir, "a.pem"), KeyFile: filepath.Join(dir, "b.key")},
	} {
		cfg := testConfig(t)
		cfg.TLS = &c
		n, err := Start(context.Background(), cfg)
		if err == nil {
			n.Shutdown(context.Background())
			t.Fatalf("Start with %+v succeeded", c)
		}
		if !strings.Contains(err.Error(), "--tls-cert "+c.CertFile) {
			t.Errorf("Start with %+v: %v; want the error to name --tls-cert", c, err)
		}
	}
}

// TestCleartextBeyondLoopbackWarns: a listener beyond loopback without TLS
// logs a warning naming it; on loopback, or with TLS, none.
func TestCleartextBeyondLoopbackWarns(t *testing.T) {
	dir := t.TempDir()
	_, certFile, keyFile := tlscerttest.NewCAWithLeaf(t, dir)
	for _, c := range []struct {
		listen, resp string
		tls          bool
		warn         string // the flag the warning names; "" none
	}{
		{"127.0.0.1:0", "", false, ""}, {"0.0.0.0:0", "", false, "--listen"}, {"0.0.0.0:0", "", true, ""},
		{"127.0.0.1:0", "0.0.0.0:0", false, "--resp-listen"}, {"127.0.0.1:0", "0.0.0.0:0", true, ""},
	} {
		cfg := testConfig(t)
		cfg.Listen, cfg.AdminListen, cfg.RespListen = c.listen, "", c.resp
		if c.tls {
			cfg.TLS = &TLS{CertFile: certFile, KeyFile: keyFile}
		}
		out := startupLog(t, cfg)
		got := strings.Count(out, `"level":"WARN","msg":"serving beyond loopback without TLS`)
		if want := min(len(c.warn), 1); got != want || c.warn != "" && !strings.Contains(out, `"flag":"`+c.warn+`"`) {
			t.Errorf("listen %s, resp %s, TLS %v: %d warnings logged, want one naming %q\n%s", c.listen, c.resp, c.tls, got, c.warn, out)
		}
	}
}
