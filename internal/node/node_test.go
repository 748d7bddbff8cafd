package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
)

func testConfig(t *testing.T) Config {
	return Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler)}
}

// TestStartFailuresReleaseEverything: a node that cannot start (its data
// directory is locked, its port taken) reports why and leaves no goroutine
// or lock behind (goleak checks the former; a third start checks the latter).
func TestStartFailuresReleaseEverything(t *testing.T) {
	cfg := testConfig(t)
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(context.Background(), cfg); !errors.Is(err, fault.ErrConfig) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Start on a locked directory: %v", err)
	}
	busy := testConfig(t)
	busy.Listen = n.Addr()
	if _, err := Start(context.Background(), busy); !errors.Is(err, fault.ErrConfig) || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("Start on a taken port: %v", err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	again, err := Start(context.Background(), busy) // the directory of the failed start is free again
	if err != nil {
		t.Fatalf("Start after a failed start on the same directory: %v", err)
	}
	again.Shutdown(context.Background())
}

func TestAdminListener(t *testing.T) {
	cfg := testConfig(t)
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	for path, want := range map[string]string{"/livez": "ok", "/readyz": `{"status":"ready"}`, "/metrics": "cairn_build_info", "/debug/pprof/": "goroutine"} {
		resp, err := http.Get("http://" + n.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("admin %s: %s %.80q; want 200 with %q", path, resp.Status, b, want)
		}
	}
}

func TestAdminBeyondLoopbackNeedsToken(t *testing.T) {
	cfg := testConfig(t)
	cfg.AdminListen = "0.0.0.0:0"
	if _, err := Start(context.Background(), cfg); !errors.Is(err, fault.ErrConfig) || !strings.Contains(err.Error(), "--admin-token-sha256") {
		t.Fatalf("admin beyond loopback without a token: %v", err)
	}
	tok, sum, _ := server.NewToken()
	cfg.Auth.Admin = [][32]byte{sum}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	url := "http://" + n.AdminAddr() + "/metrics"
	// The token is parsed as on the API: the scheme in any case, spaces
	// around the token. A refusal is the API's JSON error with the request
	// id the response names.
	for _, c := range []struct {
		header string
		want   int
	}{
		{"", 401}, {"Bearer cairn_wrong", 401}, {"Basic " + tok, 401},
		{"Bearer " + tok, 200}, {"bearer " + tok, 200}, {"BEARER   " + tok + "  ", 200},
	} {
		req, _ := http.NewRequest("GET", url, nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		code, h, body := send(t, http.DefaultClient, req)
		if code != c.want {
			t.Errorf("admin /metrics with Authorization %q: %d, want %d", c.header, code, c.want)
			continue
		}
		if code != 401 {
			continue
		}
		if ec, _ := apiError(t, body); ec != "unauthorized" || h.Get("Content-Type") != "application/json" {
			t.Errorf("refusal: code %q, Content-Type %q", ec, h.Get("Content-Type"))
		}
		if id := h.Get("X-Request-Id"); id == "" || !strings.Contains(body, `"request_id":"`+id+`"`) {
			t.Errorf("refusal names request id %q? %s", id, body)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7070": true, "[::1]:1": true, "localhost:80": true, "127.1.2.3:9": true,
		":7070": false, "0.0.0.0:1": false, "10.0.0.1:1": false, "[::]:1": false, "example.com:1": false, "nonsense": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestAdminReadyzWhileDraining: while the API drains a request in flight,
// the admin listener's /readyz says "draining", as the API's would, where
// it said "starting".
func TestAdminReadyzWhileDraining(t *testing.T) {
	n, tok := startAcme(t, nil)
	c := heldPut(t, n, tok, "held") // holds the API's drain
	stopped := make(chan error, 1)
	go func() { stopped <- n.Shutdown(context.Background()) }()
	// Polling the node's goroutines, with a deadline.
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		res, err := http.Get("http://" + n.AdminAddr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if body = string(b); res.StatusCode == 503 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	c.Close() // the drain ends
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, `"draining"`) {
		t.Fatalf("admin /readyz while the API drains: %s; want draining", body)
	}
}

// startAcme starts a node with tenant acme, mod applied to its config, and
// returns it with acme's token; the caller shuts it down.
func startAcme(t *testing.T, mod func(*Config)) (*Node, string) {
	t.Helper()
	tok, sum, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth = server.Auth{Tenants: map[string][][32]byte{"acme": {sum}}}
	if mod != nil {
		mod(&cfg)
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n, tok
}

// heldPut sends a PUT of acme's document k whose body never ends, with
// X-Request-ID id, and returns its connection once the node has it in
// flight, polling its metrics with a deadline.
func heldPut(t *testing.T, n *Node, tok, id string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "PUT /v1/tenants/acme/docs/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nX-Request-ID: %s\r\nContent-Length: 100\r\n\r\n{", tok, id)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		inFlight := false
		for line := range strings.Lines(scrape(t, "http://"+n.AdminAddr()+"/metrics")) {
			inFlight = inFlight || strings.HasPrefix(line, "cairn_http_requests_in_flight{") && strings.HasSuffix(line, " 1\n")
		}
		if inFlight {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal("the PUT is not in flight after 10s")
		}
	}
}

// TestServesWhileDraining: between SetDraining (--drain-delay) and the
// drain, the API's /readyz answers 503 draining while every request is
// still served, new connections included.
func TestServesWhileDraining(t *testing.T) {
	n, tok := startAcme(t, nil)
	defer n.Shutdown(context.Background())
	n.SetDraining()
	http.DefaultClient.CloseIdleConnections() // a new connection, as a load balancer's next check
	res, err := http.Get("http://" + n.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 503 || !strings.Contains(string(b), `"draining"`) {
		t.Errorf("API /readyz while draining: %d %s; want 503 draining", res.StatusCode, b)
	}
	if code, body := (replNode{n, tok}).do(t, "PUT", "k", `{"v":1}`); code != 201 {
		t.Errorf("PUT while draining: %d %s; want it served", code, body)
	}
}

// TestBodyCutByDrainIsTheNodes: a PUT whose body is still arriving when
// the drain runs out is cut by the node; its request line says so, 503
// shutting_down at Info, not a 400 of the client's.
func TestBodyCutByDrainIsTheNodes(t *testing.T) {
	logs := &proctest.SyncBuffer{}
	n, tok := startAcme(t, func(cfg *Config) { cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })
	heldPut(t, n, tok, "cut")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := n.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned nil with a body still arriving past its deadline")
	}
	var line map[string]any
	for deadline := time.Now().Add(10 * time.Second); line == nil; time.Sleep(time.Millisecond) {
		for _, rec := range logLines(t, logs.String(), "request failed") {
			if rec["request_id"] == "cut" {
				line = rec
			}
		}
		if line == nil && time.Now().After(deadline) {
			t.Fatalf("no line for the cut request: %s", logs.String())
		}
	}
	if line["status"] != 503.0 || line["level"] != "INFO" || line["class"] != "transient" {
		t.Errorf("the cut request's line: %v; want 503 at INFO, class transient", line)
	}
}

// TestNodeIDChecked: a --node-id too long to name the node's objects in
// the backends, or with spaces or control characters, stops the start.
func TestNodeIDChecked(t *testing.T) {
	for _, id := range []string{strings.Repeat("n", store.MaxNodeID+1), "node 1", "node\n1", "n\xff"} {
		cfg := testConfig(t)
		cfg.NodeID = id
		n, err := Start(context.Background(), cfg)
		if err == nil {
			n.Shutdown(context.Background())
			t.Errorf("a node started with --node-id %q", id)
			continue
		}
		if !errors.Is(err, fault.ErrConfig) || !strings.Contains(err.Error(), "--node-id") {
			t.Errorf("--node-id %q: %v; want a config error naming --node-id", id, err)
		}
	}
	cfg := testConfig(t)
	cfg.NodeID = strings.Repeat("n", store.MaxNodeID)
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("a node id of %d bytes: %v", store.MaxNodeID, err)
	}
	n.Shutdown(context.Background())
}
