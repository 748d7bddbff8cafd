package cli

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/procout"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/tlscert/tlscerttest"
)

// TestClientCommandsOverTLS: with --ca-cert or CAIRN_CA_CERT naming the CA
// that signed a node's certificate, the client commands and cairn
// reconcile talk to its https URLs; without it they fail verification.
func TestClientCommandsOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca, certFile, keyFile := tlscerttest.NewCAWithLeaf(t, dir)
	tok, sum, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(context.Background(), node.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Auth: server.Auth{Tenants: map[string][][32]byte{"acme": {sum}}},
		TLS:  &node.TLS{CertFile: certFile, KeyFile: keyFile},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	conn := []string{"--url", n.URL(), "--token", tok, "--tenant", "acme"}
	withCA := map[string]string{"CAIRN_CA_CERT": ca.PEMFile}
	admin := []string{"--admin-url", "https://" + n.AdminAddr()}
	steps := []struct {
		env    map[string]string
		args   []string
		stdin  string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{nil, append([]string{"put", "a", "--data", `{"n":1}`, "--ca-cert", ca.PEMFile}, conn...), "", 0, "created a", ""},
		{withCA, append([]string{"get", "a"}, conn...), "", 0, `{"n":1}`, ""},
		{withCA, append([]string{"ls"}, conn...), "", 0, "a\n", ""},
		{withCA, append([]string{"ingest", "-", "--key-field", "id"}, conn...), `{"id":"b"}` + "\n", 0, "", ""},
		{withCA, append([]string{"get", "b"}, conn...), "", 0, `"id":"b"`, ""},
		{withCA, append([]string{"conflicts", "ls"}, conn...), "", 0, "", ""},
		{nil, append([]string{"get", "a"}, conn...), "", exitFail, "", "certificate signed by unknown authority"},
		{nil, append([]string{"get", "a"}, conn...), "", exitFail, "", "give the CA's certificate with --ca-cert FILE or CAIRN_CA_CERT"},
		{withCA, append(append([]string{"get", "a"}, conn...), "--url", "notaurl"), "", exitUsage, "", `the node's URL "notaurl" (CAIRN_URL or --url): want http://HOST:PORT or https://HOST:PORT`},
		{withCA, append(append([]string{"get", "a"}, conn...), "--url", "https://"), "", exitUsage, "", "no host in it"},
		{nil, append([]string{"get", "a", "--ca-cert", filepath.Join(dir, "missing.pem")}, conn...), "", exitUsage, "", "--ca-cert"},
		{nil, append([]string{"get", "a", "--ca-cert", keyFile}, conn...), "", exitUsage, "", "no PEM certificate"},
		{withCA, append([]string{"reconcile", "status"}, admin...), "", 0, "no backends configured", ""},
		{nil, append([]string{"reconcile", "status"}, admin...), "", exitFail, "", "certificate signed by unknown authority"},
		{nil, append([]string{"reconcile", "status"}, admin...), "", exitFail, "", "give the CA's certificate with --ca-cert FILE or CAIRN_CA_CERT"},
		{nil, []string{"reconcile", "status", "--admin-url", "notaurl"}, "", exitUsage, "", `the node's URL "notaurl" (CAIRN_ADMIN_URL or --admin-url)`},
	}
	for _, s := range steps {
		code, stdout, stderr := run(t, s.env, s.stdin, s.args...)
		if code != s.code || !strings.Contains(stdout, s.stdout) || !strings.Contains(stderr, s.stderr) {
			t.Errorf("cairn %q: exit %d, stdout %q, stderr %q; want exit %d, stdout ∋ %q, stderr ∋ %q",
				s.args, code, stdout, stderr, s.code, s.stdout, s.stderr)
		}
	}
}

// TestServeTLSFlags: --tls-cert and --tls-key (or their environment twins)
// go together, and a pair that does not load stops serve naming the flags.
func TestServeTLSFlags(t *testing.T) {
	dir := t.TempDir()
	_, certFile, keyFile := tlscerttest.NewCAWithLeaf(t, dir)
	base := []string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-listen", ""}
	for _, c := range []struct {
		env  map[string]string
		args []string
		code int
		want string
	}{
		{nil, []string{"--tls-cert", certFile}, exitUsage, "--tls-key \"\": give both"},
		{map[string]string{"CAIRN_TLS_KEY": keyFile}, nil, exitUsage, "--tls-cert \"\", --tls-key \"" + keyFile},
		// A file that is no certificate is a setting at fault, found
		// before the data directory is made.
		{map[string]string{"CAIRN_TLS_CERT": keyFile, "CAIRN_TLS_KEY": keyFile}, nil, exitUsage, `CAIRN_TLS_CERT="` + keyFile + `"`},
	} {
		code, _, stderr := run(t, c.env, "", append(base, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("serve %q with env %v: exit %d, stderr %q; want exit %d naming %q", c.args, c.env, code, stderr, c.code, c.want)
		}
	}
}

// TestWelcomeOverTLS: a development node serving TLS prints a redis-cli
// line with --tls, and says that curl and redis-cli need the CA.
func TestWelcomeOverTLS(t *testing.T) {
	_, certFile, keyFile := tlscerttest.NewCAWithLeaf(t, t.TempDir())
	var stderr procout.Buffer
	sigs, done := serveInProcess(t, &stderr, "--resp-listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--log-level", "error")
	// Polling the serving goroutine's output, with a deadline.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stderr.String(), "--cacert"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no welcome after 30s:\n%s", stderr.String())
		}
	}
	sigs <- syscall.SIGTERM
	<-done
	if !strings.Contains(stderr.String(), "or: redis-cli --tls -h 127.0.0.1") {
		t.Fatalf("the welcome's redis-cli line lacks --tls:\n%s", stderr.String())
	}
}
