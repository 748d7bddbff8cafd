package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondProcessRefused: the data directory is locked; a second serve on
// it fails fast, names the problem, and leaves the first one serving.
func TestSecondProcessRefused(t *testing.T) {
	dir := t.TempDir()
	p := startNode(t, dir)
	cmd := exec.Command(cairnBin, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--admin-listen", "")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another process") {
		t.Fatalf("second serve on %s: err %v, output %q; want a failure naming the lock", dir, err, out)
	}
	if resp, _, err := p.do(context.Background(), http.MethodPut, "still-here", `{}`); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("first node after the refused second one: %v %v", resp, err)
	}
}

// TestSIGTERMDrains sends SIGTERM while a PUT's body is still arriving: the
// node stops accepting, finishes that request (201), exits 0, and the write
// is there after a restart.
func TestSIGTERMDrains(t *testing.T) {
	dir := t.TempDir()
	p := startNode(t, dir)
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"drained": true}`
	fmt.Fprintf(conn, "PUT /v1/tenants/demo/docs/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", p.Token, len(body), body[:5])
	// The signal must come while the PUT is in flight: http.Server.Shutdown
	// waits for active connections, but treats a connection whose request
	// it has not read yet as idle after 5 s, which a loaded machine can
	// reach. So wait until the node counts the request as being served.
	waitInFlight(t, "http://"+adminAddr(t, p)+"/metrics")

	p.cmd.Process.Signal(syscall.SIGTERM)
	waitHTTPGone(t, p.URL+"/livez") // the listener closed: draining
	io.WriteString(conn, body[5:])
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight PUT was cut by the drain: %v", err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight PUT during drain: %s", resp.Status)
	}
	conn.Close()
	if err := p.wait(30 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}
	q := startNode(t, dir)
	r, b, err := q.do(context.Background(), http.MethodGet, "slow", "")
	if err != nil || r.StatusCode != http.StatusOK || string(b) != body {
		t.Fatalf("after restart: %v %v %q", r, err, b)
	}
}

// waitInFlight polls a node's metrics (across processes, with a deadline)
// until some request is being served.
func waitInFlight(t *testing.T, metricsURL string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := httpClient.Get(metricsURL)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "cairn_http_requests_in_flight{") && !strings.HasSuffix(line, " 0") {
					return
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no request in flight at %s within 10s", metricsURL)
}

// waitHTTPGone polls url until connections to it are refused.
func waitHTTPGone(t *testing.T, url string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err != nil {
			return
		}
		resp.Body.Close()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s still answered 10s after SIGTERM", url)
}
