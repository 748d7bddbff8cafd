package cli

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/loadgen"
	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
)

// startBenchNode runs a durable node in-process with the limits 'cairn
// serve' has by default (the node package's own defaults allow a tenant
// 200 requests a second), and returns the client environment for it.
func startBenchNode(t *testing.T) map[string]string {
	t.Helper()
	tok, sum, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	fs, f := newServeFlags()
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	limits := resilience.DefaultLimiterConfig()
	limits.MaxInFlight, limits.TenantMaxInFlight = f.maxInFlight, f.tenantInFl
	limits.TenantRate, limits.TenantBurst = f.tenantRate, int(2*f.tenantRate)
	n, err := node.Start(context.Background(), node.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", Durability: store.Sync, Limits: limits,
		Logger: slog.New(slog.DiscardHandler),
		Auth:   server.Auth{Tenants: map[string][][32]byte{"acme": {sum}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return map[string]string{"CAIRN_URL": "http://" + n.Addr(), "CAIRN_TOKEN": tok, "CAIRN_TENANT": "acme"}
}

// TestBench runs every op of 'cairn bench' for a moment against a real
// node, and once with --bare against the bare handler.
func TestBench(t *testing.T) {
	env := startBenchNode(t)
	bare := httptest.NewServer(loadgen.Bare(50))
	defer bare.Close()
	short := []string{"--conns", "2", "--duration", "150ms", "--warmup", "0s", "--keys", "5", "--size", "50"}
	for _, c := range []struct {
		name   string
		args   []string
		output []string // each must appear in stdout
	}{
		{"get", []string{"--op", "get"}, []string{"get, 2 connections", "node: 200×"}},
		{"put", []string{"--op", "put", "--prefix", "t/p"}, []string{"node: 201×"}},
		{"mixed", []string{"--op", "mixed", "--get-ratio", "0.5"}, []string{"node: 200×"}},
		{"http client", []string{"--client", "http"}, []string{"http client", "node: 200×"}},
		{"bare", []string{"--bare", bare.URL, "--label", "cairn"}, []string{"bare: 200×", "cairn: 200×", "cairn/bare: "}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(t, env, "", append(append([]string{"bench"}, short...), c.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			for _, want := range c.output {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
	// The PUTs were stored: the first key of worker 0 reads back.
	if code, stdout, stderr := run(t, env, "", "get", "t/p/w0/0"); code != exitOK || !strings.HasPrefix(stdout, `{"pad":"`) {
		t.Errorf("get t/p/w0/0 = %d %q (stderr %q), want the benchmark's document", code, stdout, stderr)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestBenchTSV(t *testing.T) {
	env := startBenchNode(t)
	code, stdout, stderr := run(t, env, "", "bench", "--tsv", "--conns", "1", "--duration", "100ms", "--warmup", "0s", "--keys", "2")
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	fields := strings.Split(strings.TrimSpace(stdout), "\t")
	if len(fields) != 11 || fields[0] != "node" || fields[1] != "get" || fields[2] != "1" || fields[10] != "0" {
		t.Errorf("tsv = %q, want 11 fields: node get 1 … 0 failures", stdout)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	env := map[string]string{"CAIRN_TOKEN": "x", "CAIRN_URL": "http://127.0.0.1:1"}
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"help", env, []string{"--help"}, exitOK},
		{"bad op", env, []string{"--op", "delete"}, exitUsage},
		{"bad client", env, []string{"--client", "curl"}, exitUsage},
		{"tiny size", env, []string{"--op", "put", "--size", "3"}, exitUsage},
		{"no token", map[string]string{}, nil, exitUsage},
		{"argument", env, []string{"extra"}, exitUsage},
		{"node down", env, []string{"--duration", "10ms"}, exitFail}, // the seed fails
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run(t, c.env, "", append([]string{"bench"}, c.args...)...)
			if code != c.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, c.want, stderr)
			}
		})
	}
}

// TestBenchBare starts 'cairn bench-bare' on a free port, reads its
// address, fetches the document and stops it by cancelling.
func TestBenchBare(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"bench-bare", "--listen", "127.0.0.1:0", "--size", "64"},
			Env{Stdout: pw, Stderr: &stderr, Getenv: func(string) string { return "" }})
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading BARE_URL: %v (stderr %q)", err, stderr.String())
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "BARE_URL=")
	if !ok {
		t.Fatalf("first line %q, want BARE_URL=…", line)
	}
	resp, err := http.Get(url + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if string(body) != string(loadgen.Body(64)) {
		t.Errorf("bare GET = %q, want loadgen.Body(64)", body)
	}
	go io.Copy(io.Discard, pr)
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("bench-bare exit %d, want 0; stderr:\n%s", code, stderr.String())
	}
}
